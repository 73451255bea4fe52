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

from affectseq.errors import ConfigError, InputError
from affectseq.features.encoders import EncoderSpec, encoder_from_spec
from affectseq.features.frame_model import FrameModel
from affectseq.features.model_header import check_frame_header, parse_header_json
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
    """The metadata of a frame-model file without loading its weights; InputError if not ours.

    The header is untrusted: it is checked against the schema of
    :mod:`affectseq.features.model_header` (types, ranges, whitelisted encoder options).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file not found")
    header = parse_header_json(path, read_safetensors_metadata(path, "model").get(HEADER_KEY), "model")
    return check_frame_header(path, header, FORMAT, FORMAT_VERSION)


def read_safetensors_metadata(path: Path, what: str) -> dict[str, str]:
    """The string metadata of a safetensors file; InputError for a file that is not one."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for a foreign file
        reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise InputError(path, f"not an affectseq {what} (not a safetensors file: {reason})") from None
    return metadata


def load_frame_model(path_or_name: str | os.PathLike[str], device: str | torch.device = "cpu") -> FrameModel:
    """Load a frame model from a file, or the shipped model by name (``"default"``), in eval mode.

    The returned model carries ``.meta`` (the training information saved with it)
    and ``.source_path``.
    """
    from safetensors.torch import load_file

    from affectseq.features.shipped import resolve_model_path

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
    except (KeyError, ValueError, TypeError, RuntimeError, ConfigError) as err:
        # One line: torch's size-mismatch messages span many lines.
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise InputError(path, f"affectseq model file does not match its metadata ({reason})") from None
    model.meta = header.get("meta", {})  # type: ignore[assignment]
    model.source_path = str(path)  # type: ignore[assignment]
    return model.to(device).eval()
