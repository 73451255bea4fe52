"""Models shipped inside the package (``src/affectseq/weights/``), found offline by name.

``"default"`` is the expression model trained on FER2013 (see docs/model_card.md).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from affectseq.errors import InputError

# name -> file in affectseq/weights/ (+ a JSON card with the same stem)
SHIPPED_MODELS: dict[str, str] = {
    "default": "default_expr_fer2013.safetensors",
    "fer2013-v1": "default_expr_fer2013.safetensors",  # the first default (FER2013 labels), kept for comparison
}


def weights_dir() -> Path:
    """The installed ``affectseq/weights`` folder."""
    return Path(str(resources.files("affectseq") / "weights"))


def default_model_path() -> Path:
    """Path of the shipped default expression model."""
    return shipped_model_path("default")


def shipped_model_path(name: str) -> Path:
    """Path of a shipped model by name; InputError when the name or file is unknown/missing."""
    if name not in SHIPPED_MODELS:
        raise InputError(name, f"unknown shipped model; available: {', '.join(SHIPPED_MODELS)}")
    path = weights_dir() / SHIPPED_MODELS[name]
    if not path.is_file():
        raise InputError(path, "shipped model file missing from the installation")
    return path


def model_card(name: str = "default") -> dict[str, Any]:
    """The JSON card data shipped beside a model (metrics, training command, terms)."""
    card = shipped_model_path(name).with_suffix(".json")
    if not card.is_file():
        return {}
    return json.loads(card.read_text(encoding="utf-8"))


def resolve_model_path(path_or_name: str | os.PathLike[str]) -> Path:
    """A shipped model name (``"default"``) or a file path -> an existing file path."""
    text = os.fspath(path_or_name)
    if text in SHIPPED_MODELS:
        return shipped_model_path(text)
    path = Path(text)
    if not path.exists():
        raise InputError(path, f"model file not found (shipped models: {', '.join(SHIPPED_MODELS)})")
    if path.is_dir():
        best = path / "checkpoint_best.safetensors"
        if best.is_file():
            return best  # a training run directory
        raise InputError(path, "directory holds no checkpoint_best.safetensors")
    return path


def export_shipped_model(run_dir: str | os.PathLike[str], name: str = "default",
                         card: dict[str, Any] | None = None, dest_dir: str | os.PathLike[str] | None = None) -> Path:
    """Copy a run's ``checkpoint_best.safetensors`` into the weights folder as shipped model ``name``.

    Writes the JSON card beside it: the run's validation metrics (from the checkpoint),
    its test metrics (``test_metrics.json``, when the run finished) and ``card`` entries.
    Used by maintainers to (re)ship the default model; not part of normal use.
    """
    import shutil

    from affectseq.features.checkpoint import read_frame_model_header
    from affectseq.utils.atomic import atomic_path, write_json_atomic

    run = Path(run_dir)
    source = run / "checkpoint_best.safetensors"
    header = read_frame_model_header(source)
    target = Path(dest_dir or weights_dir()) / SHIPPED_MODELS[name]
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    test_file = run / "test_metrics.json"
    meta = header.get("meta", {})
    from affectseq.utils.hashing import sha256_file

    data = {
        "name": name,
        "file": target.name,
        "sha256": sha256_file(target),  # the card describes exactly these weights (tests/test_default_model_guard.py)
        "spec": header["spec"],
        "tasks": header["tasks"],
        "expr_classes": header["expr_classes"],
        "selected_epoch": meta.get("epoch"),
        "val_metrics": meta.get("val_metrics"),
        "test_metrics": json.loads(test_file.read_text(encoding="utf-8")) if test_file.is_file() else None,
        "training_command": meta.get("command"),
        **(card or {}),
    }
    write_json_atomic(target.with_suffix(".json"), data)
    return target
