"""The registry of models shipped inside the package (``src/affectseq/weights/``): names, paths, cards.

``"default"`` is the expression model v3 trained on FER+ (see docs/model_card.md); earlier defaults stay
loadable by name (``ferplus-v2``, ``fer2013-v1``). This is
the small module every loader imports to turn a name into a file (``resolve_model_path``).
Maintainers ship a trained model with ``scripts/ship_default_model.py``.
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
    # v3: v2 fine-tuned with the logit-adjusted loss, prior-corrected and temperature-calibrated (docs/model_card.md)
    "default": "default_expr_ferplus_v3.safetensors",
    "ferplus-v2": "default_expr_ferplus.safetensors",  # the previous default (FER+ labels, 8 classes)
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
