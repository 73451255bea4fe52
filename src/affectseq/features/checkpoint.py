"""Frame-model checkpoints: one ``.safetensors`` file, its metadata JSON in the header.

The header key ``affectseq`` holds ``{"format": "affectseq.frame_model", "version": 1,
"spec": EncoderSpec, "tasks": [...], "expr_classes": [...], "num_aus": 13, "meta": {...}}``
where ``meta`` is free training information (dataset, metrics, command). A file
without that key is not ours and is rejected with an :class:`InputError`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from affectseq.errors import InputError
from affectseq.features.encoders import EncoderSpec, encoder_from_spec
from affectseq.features.frame_model import FrameModel
from affectseq.utils.atomic import atomic_path

FORMAT = "affectseq.frame_model"
FORMAT_VERSION = 1
HEADER_KEY = "affectseq"


def save_frame_model(path: str | os.PathLike[str], model: FrameModel, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (weights + spec/tasks/classes + ``meta``) to ``path`` atomically."""
    from safetensors.torch import save_file

    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "spec": model.spec.to_dict(),
        "tasks": list(model.tasks),
        "expr_classes": list(model.expr_classes),
        "num_aus": int(model.heads["au"].out_features) if "au" in model.heads else 0,
        "dropout": float(model.dropout.p),
        "meta": meta or {},
    }
    # safetensors refuses shared/non-contiguous storage; clone every tensor to its own block.
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    target = Path(path)
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata={HEADER_KEY: json.dumps(header, default=_plain)})
    return target


def _plain(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def read_frame_model_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a frame-model file without loading its weights; InputError if not ours."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for a foreign file
        raise InputError(path, f"not an affectseq model (not a safetensors file: {err})") from None
    raw = metadata.get(HEADER_KEY)
    if raw is None:
        raise InputError(path, "not an affectseq model (safetensors file without affectseq metadata)")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError:
        raise InputError(path, "not an affectseq model (corrupt affectseq metadata)") from None
    if header.get("format") != FORMAT:
        raise InputError(path, f"not an affectseq frame model (format {header.get('format')!r})")
    if int(header.get("version", 0)) > FORMAT_VERSION:
        raise InputError(path, f"frame model format version {header['version']} is newer than this affectseq")
    return header


def load_frame_model(path_or_name: str | os.PathLike[str], device: str | torch.device = "cpu") -> FrameModel:
    """Load a frame model from a file, or the shipped model by name (``"default"``), in eval mode.

    The returned model carries ``.meta`` (the training information saved with it)
    and ``.source_path``.
    """
    from safetensors.torch import load_file

    from affectseq.features.pretrained import resolve_model_path

    path = resolve_model_path(path_or_name)
    header = read_frame_model_header(path)
    try:
        spec = EncoderSpec.from_dict(header["spec"])
        model = FrameModel(
            encoder_from_spec(spec),
            tasks=header["tasks"],
            expr_classes=header.get("expr_classes") or (),
            num_aus=int(header.get("num_aus") or 13),
            dropout=float(header.get("dropout", 0.0)),
        )
        model.load_state_dict(load_file(str(path), device="cpu"))
    except (KeyError, ValueError, TypeError, RuntimeError) as err:
        raise InputError(path, f"affectseq model file does not match its metadata ({err})") from None
    model.meta = header.get("meta", {})  # type: ignore[assignment]
    model.source_path = str(path)  # type: ignore[assignment]
    return model.to(device).eval()
