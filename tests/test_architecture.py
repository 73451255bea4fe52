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
    "features": 4,
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
