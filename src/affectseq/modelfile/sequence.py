"""Sequence-model files: the temporal network's tensors + the frame model that made its features.

Tensors and checked headers only: the networks are built from a header by
:mod:`affectseq.models.factory`. ``checkpoint_best.safetensors`` of a sequence run holds:

* tensors ``temporal.*``: the temporal network's weights;
* tensor ``frame_file`` (when embedded, the default): the frame-model file's bytes (uint8), so
  one file is enough to run ``affectseq predict`` on a raw video; checked against
  ``frame_model.sha256`` before use. Version-1 bundles embedded its tensors as ``frame.*``;
* the header (schema: :mod:`affectseq.modelfile.schema`): the common fields plus the network
  (``input_dim``, ``heads``, ``model_config`` = ``{arch, args, mask_channel}``), the window (``mode``, ``window``, and, when the
  store knew its videos' frame rate, ``fps`` and ``window_sec``) and ``frame_model``.

A non-embedded frame model is looked up by its file *name* beside the bundle only (sha256-checked):
a model file never makes affectseq open a path it names.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from affectseq import __version__
from affectseq.errors import InputError
from affectseq.modelfile.container import HEADER_KEY, read_header, write_model_file
from affectseq.modelfile.frame import read_frame_model_header
from affectseq.modelfile.schema import (
    SCHEMA_VERSION,
    SEQUENCE_FORMAT,
    VA_RANGE,
    HeaderChecker,
    check_encoder_spec,
    face_of,
)
from affectseq.utils.hashing import sha256_file

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
BEST_NAME = "checkpoint_best.safetensors"
FRAME_FILE_KEY = "frame_file"
_INFO_FIELDS = ("mode", "window", "tasks", "expr_classes", "encoder", "fps", "meta")


def write_sequence_file(
    path: str | os.PathLike[str],
    tensors: Mapping[str, "torch.Tensor"],
    network: Mapping[str, Any],
    info: Mapping[str, Any],
    frame_checkpoint: str | os.PathLike[str] | None = None,
    embed_frame: bool = True,
) -> Path:
    """Write a temporal network's ``tensors`` + header atomically; the frame model is embedded unless ``embed_frame=False``.

    ``network``: ``input_dim``, ``heads`` and ``model_config`` (``{arch, args, mask_channel}``).
    ``info``: ``mode``, ``window``, ``tasks``, ``expr_classes``, ``encoder``, ``fps`` (of the
    training features, None when unknown) and ``meta``; any other key (``epoch``, ``val_score``...)
    goes into ``meta``. With a frame model, the header's ``encoder`` is that model's own spec.
    """
    import torch

    out = {f"temporal.{k}": v for k, v in tensors.items()}
    meta = {**dict(info.get("meta") or {}), **{k: v for k, v in info.items() if k not in _INFO_FIELDS}}
    encoder, frame_ref = _plain_encoder(info.get("encoder"), meta), None
    if frame_checkpoint is not None:
        frame_path = Path(frame_checkpoint)
        encoder = read_frame_model_header(frame_path)["encoder"]
        frame_ref = {"sha256": sha256_file(frame_path), "name": frame_path.name, "embedded": bool(embed_frame)}
        if embed_frame:
            out[FRAME_FILE_KEY] = torch.from_numpy(np.fromfile(frame_path, dtype=np.uint8))
    fps = float(info["fps"]) if info.get("fps") else None
    window = int(info["window"])
    header = {
        "format": SEQUENCE_FORMAT, "version": SCHEMA_VERSION, "affectseq_version": __version__,
        "encoder": encoder, "face": face_of(encoder), "tasks": list(info["tasks"]),
        "expr_classes": list(info.get("expr_classes") or []), "va_range": list(VA_RANGE), "meta": meta,
        "input_dim": int(network["input_dim"]), "heads": dict(network["heads"]),
        "model_config": dict(network["model_config"]), "mode": str(info["mode"]), "window": window,
        "fps": fps, "window_sec": window / fps if fps else None, "frame_model": frame_ref,
    }
    return write_model_file(path, out, header, SEQUENCE_FORMAT)


def _plain_encoder(encoder: Any, meta: dict[str, Any]) -> dict[str, Any] | None:
    """A store's encoder mapping if it is a full ``EncoderSpec``; else None, with the mapping kept in ``meta``."""
    if not encoder:
        return None
    try:
        return check_encoder_spec(HeaderChecker("<store encoder>", "sequence model"), dict(encoder), "encoder")
    except InputError:
        meta["store_encoder"] = dict(encoder)  # external features: the store named their source only
        return None


def resolve_sequence_checkpoint(path_or_run_dir: str | os.PathLike[str]) -> Path:
    """A run directory means its ``checkpoint_best.safetensors``; a file is used as given."""
    path = Path(path_or_run_dir)
    return path / BEST_NAME if path.is_dir() else path


def read_sequence_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked (version 2) header of a sequence-model file; ``InputError`` (one line) for anything else."""
    return read_header(path, SEQUENCE_FORMAT, "sequence model")


def read_temporal_state(path: str | os.PathLike[str]) -> dict[str, "torch.Tensor"]:
    """The temporal network's state dict stored in a sequence-model file (``temporal.*`` tensors)."""
    from safetensors import safe_open

    prefix = "temporal."
    with safe_open(str(path), framework="pt") as fh:
        return {k[len(prefix):]: fh.get_tensor(k) for k in fh.keys() if k.startswith(prefix)}


def bundled_frame_file(path: str | os.PathLike[str], header: Mapping[str, Any], scratch: str | os.PathLike[str]
                       ) -> Path | None:
    """The frame-model file of a sequence-model file: embedded (sha256-checked, written into ``scratch``),
    else the file of the recorded name beside it. None when the bundle was trained on external features.
    """
    ref = header["frame_model"]
    if ref is None:
        return None
    path = Path(path)
    if not ref["embedded"]:
        return _referenced_frame_file(path, ref)
    if "v1_header" in ref:
        return _v1_frame_file(path, ref["v1_header"], Path(scratch) / ref["name"])
    return _embedded_frame_file(path, ref, Path(scratch) / ref["name"])


def _embedded_frame_file(path: Path, ref: Mapping[str, Any], out: Path) -> Path:
    """Write the embedded frame-model bytes to ``out`` after checking them against ``frame_model.sha256``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        if FRAME_FILE_KEY not in fh.keys():
            raise InputError(path, f"invalid sequence model: frame_model.embedded is true but no {FRAME_FILE_KEY} "
                                   "tensor is stored")
        data = fh.get_tensor(FRAME_FILE_KEY).numpy().tobytes()
    if hashlib.sha256(data).hexdigest() != ref["sha256"]:
        raise InputError(path, f"embedded frame model does not match frame_model.sha256 ({ref['sha256'][:12]}...): "
                               "the file was altered or damaged")
    out.write_bytes(data)
    return out


def _v1_frame_file(path: Path, v1_header: str, out: Path) -> Path:
    """A version-1 bundle's embedded ``frame.*`` tensors, written back out as a frame-model file."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as fh:
        tensors = {k[len("frame."):]: fh.get_tensor(k) for k in fh.keys() if k.startswith("frame.")}
    save_file(tensors, str(out), metadata={HEADER_KEY: v1_header})
    return out


def _referenced_frame_file(path: Path, ref: Mapping[str, Any]) -> Path:
    """The non-embedded frame model: the file of the recorded *name* beside the bundle, sha256-checked."""
    name = ref["name"]
    candidate = path.parent / name
    if name.endswith(".safetensors") and candidate.is_file() and sha256_file(candidate) == ref["sha256"]:
        return candidate
    raise InputError(path, f"frame model {name!r} (sha256 {ref['sha256'][:12]}...) not found beside the "
                           "sequence model, or changed; copy it next to the sequence model")
