"""Sequence-model checkpoints, tied to the frame encoder whose features they were trained on.

``checkpoint_best.safetensors`` of a sequence run holds:

* tensors ``temporal.*``: the :class:`~affectseq.models.temporal.TemporalModel` weights;
* tensors ``frame.*`` (when embedded, the default): the frame model's weights, copied
  from the frame checkpoint named in the feature store's manifest, so one file is
  enough to run ``affectseq predict`` on a raw video;
* header key ``affectseq``: JSON with ``format``, the temporal architecture
  (``input_dim``, ``heads``, ``model_config``), the window (``mode``, ``window``),
  ``tasks``, ``expr_classes``, the store's ``encoder`` spec, and ``frame_checkpoint``
  ``{sha256, path, embedded}`` (+ the frame file's own header when embedded).

:func:`load_sequence_bundle` rebuilds both models from a run directory or file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from affectseq.errors import InputError
from affectseq.models.temporal import TemporalConfig, TemporalModel
from affectseq.utils.atomic import atomic_path
from affectseq.utils.hashing import sha256_file

FORMAT = "affectseq.sequence_model"
FORMAT_VERSION = 1
HEADER_KEY = "affectseq"
BEST_NAME = "checkpoint_best.safetensors"


def save_sequence_checkpoint(
    path: str | os.PathLike[str],
    model: TemporalModel,
    info: Mapping[str, Any],
    frame_checkpoint: str | os.PathLike[str] | None = None,
    embed_frame: bool = True,
) -> Path:
    """Write ``model`` + ``info`` (mode, window, tasks, expr_classes, encoder, meta) atomically.

    ``frame_checkpoint`` is the frame-model file that made the features; it is
    referenced by sha256 and path, and its weights are embedded unless ``embed_frame`` is False.
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    header: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "input_dim": model.input_dim,
        "heads": dict(model.head_sizes),
        "model_config": asdict(model.config),
        **dict(info),
        "frame_checkpoint": None,
    }
    tensors = {f"temporal.{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if frame_checkpoint is not None:
        frame_path = Path(frame_checkpoint).resolve()
        ref: dict[str, Any] = {"sha256": sha256_file(frame_path), "path": str(frame_path), "embedded": embed_frame}
        if embed_frame:
            with safe_open(str(frame_path), framework="pt") as fh:
                ref["header"] = (fh.metadata() or {}).get(HEADER_KEY)
                for key in fh.keys():
                    tensors[f"frame.{key}"] = fh.get_tensor(key)
        header["frame_checkpoint"] = ref
    target = Path(path)
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata={HEADER_KEY: json.dumps(header, default=str)})
    return target


def read_sequence_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a sequence checkpoint; ``InputError`` for anything else."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "sequence model file not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get(HEADER_KEY)
    except Exception as err:  # safetensors has its own error types for foreign files
        raise InputError(path, f"not a safetensors file ({err})") from None
    header = json.loads(raw) if raw else {}
    if header.get("format") != FORMAT:
        raise InputError(path, f"not an affectseq sequence model (format {header.get('format')!r})")
    if int(header.get("version", 0)) > FORMAT_VERSION:
        raise InputError(path, f"sequence model format {header['version']} is newer than this affectseq")
    return header


def load_sequence_checkpoint(path: str | os.PathLike[str], device: str = "cpu") -> tuple[TemporalModel, dict]:
    """(temporal model in eval mode, header) from a sequence checkpoint file."""
    from safetensors.torch import load_file

    header = read_sequence_header(path)
    try:
        config = TemporalConfig(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in header["model_config"].items()})
        model = TemporalModel(header["input_dim"], header["heads"], config)
        tensors = load_file(str(path), device="cpu")
        model.load_state_dict({k[len("temporal."):]: v for k, v in tensors.items() if k.startswith("temporal.")})
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise InputError(path, f"sequence model does not match its header ({err})") from None
    return model.to(device).eval(), header


@dataclass
class SequenceBundle:
    """Everything ``predict`` needs: the frame model (None for feature-only stores) and the temporal model."""

    frame_model: torch.nn.Module | None
    temporal_model: TemporalModel
    encoder_spec: dict[str, Any]
    mode: str
    window: int
    tasks: tuple[str, ...]
    expr_classes: tuple[str, ...]
    header: dict[str, Any] = field(repr=False, default_factory=dict)


def resolve_sequence_checkpoint(path_or_run_dir: str | os.PathLike[str]) -> Path:
    """A run directory means its ``checkpoint_best.safetensors``; a file is used as given."""
    path = Path(path_or_run_dir)
    return path / BEST_NAME if path.is_dir() else path


def load_sequence_bundle(path_or_run_dir: str | os.PathLike[str], device: str = "cpu") -> SequenceBundle:
    """Rebuild frame model + temporal model from a sequence run directory or checkpoint file.

    The frame model comes from the embedded copy, else from the referenced file
    (its sha256 must match; a relative lookup beside the checkpoint is tried when
    the absolute path moved). Stores of random/external features have no frame model.
    """
    path = resolve_sequence_checkpoint(path_or_run_dir)
    temporal, header = load_sequence_checkpoint(path, device)
    ref = header.get("frame_checkpoint")
    frame_model = None
    if ref:
        frame_model = _embedded_frame_model(path, ref, device) if ref.get("embedded") else \
            _referenced_frame_model(path, ref, device)
    return SequenceBundle(
        frame_model=frame_model,
        temporal_model=temporal,
        encoder_spec=dict(header.get("encoder") or {}),
        mode=str(header.get("mode", temporal.config.mode)),
        window=int(header.get("window", 100)),
        tasks=tuple(header.get("tasks", temporal.head_sizes)),
        expr_classes=tuple(header.get("expr_classes", ())),
        header=header,
    )


def _embedded_frame_model(path: Path, ref: Mapping[str, Any], device: str) -> torch.nn.Module:
    from safetensors import safe_open
    from safetensors.torch import save_file

    from affectseq.features.checkpoint import load_frame_model

    with safe_open(str(path), framework="pt") as fh:
        tensors = {k[len("frame."):]: fh.get_tensor(k) for k in fh.keys() if k.startswith("frame.")}
    # Round-trip through a frame checkpoint file so H4's loader stays the one way to build a frame model.
    with tempfile.TemporaryDirectory(prefix="affectseq-frame-") as tmp:
        frame_file = Path(tmp) / "frame.safetensors"
        save_file(tensors, str(frame_file), metadata={HEADER_KEY: ref["header"]})
        model = load_frame_model(frame_file, device=device)
    model.source_path = ref.get("path")  # type: ignore[assignment]
    return model


def _referenced_frame_model(path: Path, ref: Mapping[str, Any], device: str) -> torch.nn.Module:
    from affectseq.features.checkpoint import load_frame_model

    candidates = [Path(ref["path"]), path.parent / Path(ref["path"]).name]
    for candidate in candidates:
        if candidate.is_file() and sha256_file(candidate) == ref["sha256"]:
            return load_frame_model(candidate, device=device)
    raise InputError(path, f"frame model {ref['path']} (sha256 {ref['sha256'][:12]}...) not found or changed")
