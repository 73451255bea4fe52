"""Frame-model files: a frame model's tensors + the common header (no model classes here).

The header (schema: :mod:`affectseq.modelfile.schema`) carries ``encoder`` (the
``EncoderSpec`` as a dict), ``face``, ``tasks``, ``expr_classes``, ``num_aus``, ``dropout``,
``va_range`` and ``meta`` (free training information: dataset, metrics, command).
A file without an ``affectseq`` header is not ours and is rejected with an ``InputError``.
The network is built from a header by :mod:`affectseq.models.factory` (``load_frame_model``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from affectseq import __version__
from affectseq.modelfile.container import read_header, write_model_file
from affectseq.modelfile.schema import FRAME_FORMAT, SCHEMA_VERSION, VA_RANGE, face_of

if TYPE_CHECKING:  # reading a header (predict on ONNX Runtime) imports no torch
    import torch


def frame_header(encoder: Mapping[str, Any], tasks: Sequence[str], expr_classes: Sequence[str], num_aus: int,
                 dropout: float, meta: Mapping[str, Any] | None = None,
                 expr_temperature: float = 1.0) -> dict[str, Any]:
    """The version-2 header of a frame model with this encoder spec (dict), tasks and heads."""
    encoder = dict(encoder)
    header = {
        "format": FRAME_FORMAT,
        "version": SCHEMA_VERSION,
        "affectseq_version": __version__,
        "encoder": encoder,
        "face": face_of(encoder),
        "tasks": list(tasks),
        "expr_classes": list(expr_classes),
        "va_range": list(VA_RANGE),
        "meta": dict(meta or {}),
        "num_aus": int(num_aus),
        "dropout": float(dropout),
    }
    # The calibration temperature is optional: written only when set, so uncalibrated files keep v2's header.
    if expr_temperature != 1.0:
        header["expr_temperature"] = float(expr_temperature)
    return header


def write_frame_file(path: str | os.PathLike[str], tensors: Mapping[str, "torch.Tensor"],
                     header: dict[str, Any]) -> Path:
    """Write a frame model's ``tensors`` (its state dict) + ``header`` atomically (header checked first)."""
    return write_model_file(path, tensors, header, FRAME_FORMAT)


def read_frame_model_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked (version 2) header of a frame-model file without loading its weights; InputError if not ours.

    Version-1 files (``spec`` instead of ``encoder``) come back in the version-2 form.
    """
    return read_header(path, FRAME_FORMAT, "model")


def read_frame_tensors(path: str | os.PathLike[str]) -> dict[str, "torch.Tensor"]:
    """Every tensor of a frame-model file (its state dict), on CPU."""
    from safetensors.torch import load_file

    return load_file(str(path), device="cpu")
