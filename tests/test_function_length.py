"""No function in ``src/`` longer than ~60 lines unless it says why at its top.

A long function is usually several steps that want names of their own. When one really
reads best in one piece (a CLI parser declaring its options, a table of cases), its body
starts with a comment ``# Long because: <reason>`` -- before or after the docstring --
so the next reader knows it was a choice.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "affectseq"
MAX_LINES = 60
REASON = re.compile(r"^\s*#\s*Long because:\s*\S")


def _has_reason(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A ``# Long because: ...`` line between the signature and the first statement after the docstring."""
    body = node.body
    first = body[1] if len(body) > 1 and _is_docstring(body[0]) else body[0]
    start = node.lineno  # the comment may sit anywhere up to the first real statement
    return any(REASON.match(line) for line in lines[start:first.lineno - 1])


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def long_functions(root: Path = SRC, max_lines: int = MAX_LINES) -> list[str]:
    """``file:line name (N lines)`` of each function over ``max_lines`` without a reason at its top."""
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            if length > max_lines and not _has_reason(lines, node):
                found.append(f"{path.relative_to(root.parent.parent)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_long_function_without_a_reason() -> None:
    found = long_functions()
    assert not found, (f"{len(found)} function(s) over {MAX_LINES} lines: split them, or start the body with "
                       "'# Long because: <reason>':\n  " + "\n  ".join(found))


def test_the_rule_sees_long_functions_and_their_reasons(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    (tmp_path / "mod.py").write_text(
        f"def long_one():\n{body}\n"
        f"def explained():\n    \"\"\"Doc.\"\"\"\n    # Long because: a table of cases\n{body}\n"
        f"def short():\n    return 1\n",
        encoding="utf-8")
    where = f"{tmp_path.parent.name}/{tmp_path.name}/mod.py"
    assert long_functions(tmp_path) == [f"{where}:1 long_one ({MAX_LINES + 1} lines)"]
