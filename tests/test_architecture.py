"""The one-way data flow: a module imports only from its own stage or earlier ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "affectseq"

# Stage of each top-level module/package of affectseq (see docs/architecture.md).
STAGES: dict[str, int] = {
    "labels": 0, "metrics": 0, "errors": 0, "config": 0, "utils": 0, "__init__": 10, "__main__": 10,
    "io": 1,
    "data": 2,
    "faces": 3,
    "features": 4, "modelfile": 4,
    "sequences": 5,
    "models": 6,
    "training": 7,
    "evaluation": 8,
    "experiments": 9, "predict": 9, "prepare": 9, "scale": 9, "serve": 9,
    "cli": 10, "api": 10,
}


def _top(module_path: Path) -> str:
    rel = module_path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imported_stages(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "affectseq" and len(parts) > 1:
                found.append((name, parts[1]))
    return found


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_flow_one_way(path: Path) -> None:
    stage = STAGES.get(_top(path))
    assert stage is not None, f"{path}: top-level module not assigned to a stage in STAGES"
    for name, top in _imported_stages(path):
        assert top in STAGES, f"{path} imports {name}: unknown top-level module {top}"
        assert STAGES[top] <= stage, (
            f"{path.relative_to(SRC)} (stage {stage}) imports {name} (stage {STAGES[top]}): "
            "imports must flow from earlier stages only"
        )


# -- no import cycles ------------------------------------------------------------------------------------------
# A cycle means two modules can only be understood (and imported) together; a function-level import hides it
# from the import-time error but not from the reader. The graph counts every import of an affectseq module in a
# file -- module level, inside functions, under TYPE_CHECKING -- and points at the module named (the submodule
# when ``from package import name`` names one).


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The longest known module that ``name`` (a module, or a module's attribute) starts with."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported_modules(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from ..y import z
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            candidates = [f"{base}.{alias.name}" for alias in node.names] or [base]
        else:
            continue
        found.update(m for m in map(_resolve, candidates) if m and m != module)
    return found


def import_graph() -> dict[str, set[str]]:
    """``module -> modules it imports`` over every module of src/affectseq."""
    return {module: _imported_modules(module) for module in MODULES}


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that (transitively) import each other, sizes > 1."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _one_cycle(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """A shortest import path from the group's first module back to itself, inside the group."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return group  # unreachable for a strongly connected group


def test_cycle_finder_reports_each_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert _strongly_connected(graph) == [["a", "b", "c"], ["d", "e"]]
    assert _one_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert "affectseq.cli.predict" in graph and "affectseq.cli.options" in graph["affectseq.cli.predict"]
    cycles = [" -> ".join(_one_cycle(graph, group)) for group in _strongly_connected(graph)]
    assert not cycles, ("import cycles (move what both sides need into a module both import):\n  "
                        + "\n  ".join(cycles))


# -- no package-level loops ------------------------------------------------------------------------------------
# Two packages whose modules import each other (features.x -> modelfile.y and modelfile.z -> features.w) are one
# unit in disguise, even when no single module cycle exists; each top-level package (and module) of affectseq is
# a node here.


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``affectseq.<top> -> the other affectseq.<top>s its modules import`` (self-imports dropped)."""
    def top(module: str) -> str:
        return ".".join(module.split(".")[:2])

    packages: dict[str, set[str]] = {top(m): set() for m in graph}
    for module, imported in graph.items():
        packages[top(module)].update(top(m) for m in imported if top(m) != top(module))
    return packages


def test_package_graph_collapses_modules_to_their_top_package() -> None:
    graph = {"affectseq.a.x": {"affectseq.b.y"}, "affectseq.b.y": set(), "affectseq.b.z": {"affectseq.a"},
             "affectseq.a": {"affectseq.a.x"}, "affectseq.c": {"affectseq.a.x"}}
    packages = package_graph(graph)
    assert packages == {"affectseq.a": {"affectseq.b"}, "affectseq.b": {"affectseq.a"}, "affectseq.c": {"affectseq.a"}}
    assert _strongly_connected(packages) == [["affectseq.a", "affectseq.b"]]


def test_no_package_level_loops() -> None:
    packages = package_graph(import_graph())
    assert {"affectseq.features", "affectseq.modelfile", "affectseq.config", "affectseq.utils"} <= set(packages)
    graph = import_graph()
    loops = []
    for group in _strongly_connected(packages):
        members = set(group)
        edges = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                       if ".".join(m.split(".")[:2]) in members and ".".join(d.split(".")[:2]) in members
                       and ".".join(m.split(".")[:2]) != ".".join(d.split(".")[:2]))
        loops.append(" <-> ".join(group) + ":\n    " + "\n    ".join(edges))
    assert not loops, "package-level import loops (one direction must go):\n  " + "\n  ".join(loops)
