"""Frame-model files: a :class:`~affectseq.features.frame_model.FrameModel`'s weights + the common header.

The header (schema: :mod:`affectseq.modelfile.schema`) carries ``encoder`` (the
``EncoderSpec``), ``face``, ``tasks``, ``expr_classes``, ``num_aus``, ``dropout``,
``va_range`` and ``meta`` (free training information: dataset, metrics, command).
A file without an ``affectseq`` header is not ours and is rejected with an ``InputError``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affectseq import __version__
from affectseq.errors import ConfigError, InputError
from affectseq.modelfile.container import read_header, write_model_file
from affectseq.modelfile.schema import FRAME_FORMAT, SCHEMA_VERSION, VA_RANGE, face_of

if TYPE_CHECKING:  # reading a header (predict on ONNX Runtime) imports no torch; building a model does
    import torch

    from affectseq.features.frame_model import FrameModel


def frame_header(model: FrameModel, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The version-2 header describing ``model``."""
    encoder = model.spec.to_dict()
    header = {
        "format": FRAME_FORMAT,
        "version": SCHEMA_VERSION,
        "affectseq_version": __version__,
        "encoder": encoder,
        "face": face_of(encoder),
        "tasks": list(model.tasks),
        "expr_classes": list(model.expr_classes),
        "va_range": list(VA_RANGE),
        "meta": meta or {},
        "num_aus": int(model.heads["au"].out_features) if "au" in model.heads else 0,
        "dropout": float(model.dropout.p),
    }
    # The calibration temperature is optional: written only when set, so uncalibrated files keep v2's header.
    if model.expr_temperature != 1.0:
        header["expr_temperature"] = float(model.expr_temperature)
    return header


def save_frame_model(path: str | os.PathLike[str], model: FrameModel, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (weights + encoder spec/tasks/classes + ``meta``) to ``path`` atomically."""
    return write_model_file(path, model.state_dict(), frame_header(model, meta), FRAME_FORMAT)


def read_frame_model_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked (version 2) header of a frame-model file without loading its weights; InputError if not ours.

    Version-1 files (``spec`` instead of ``encoder``) come back in the version-2 form.
    """
    return read_header(path, FRAME_FORMAT, "model")


def load_frame_model(path_or_name: str | os.PathLike[str], device: str | torch.device = "cpu") -> FrameModel:
    """Load a frame model from a file, or a shipped model by name (``"default"``), in eval mode.

    The returned model carries ``.meta`` (the training information saved with it)
    and ``.source_path``.
    """
    from safetensors.torch import load_file

    from affectseq.features.encoders import EncoderSpec, encoder_from_spec
    from affectseq.features.frame_model import FrameModel
    from affectseq.features.shipped import resolve_model_path

    path = resolve_model_path(path_or_name)
    header = read_frame_model_header(path)
    try:
        model = FrameModel(
            encoder_from_spec(EncoderSpec.from_dict(header["encoder"])),
            tasks=header["tasks"],
            expr_classes=header["expr_classes"],
            num_aus=header["num_aus"] or 13,
            dropout=header["dropout"],
        )
        model.load_state_dict(load_file(str(path), device="cpu"))
    except (KeyError, ValueError, TypeError, RuntimeError, ConfigError) as err:
        # One line: torch's size-mismatch messages span many lines.
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise InputError(path, f"affectseq model file does not match its metadata ({reason})") from None
    model.expr_temperature = header.get("expr_temperature", 1.0)
    model.meta = header["meta"]  # type: ignore[assignment]
    model.source_path = str(path)  # type: ignore[assignment]
    return model.to(device).eval()
