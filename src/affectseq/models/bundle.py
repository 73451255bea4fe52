"""A sequence-model file rebuilt into networks: the frame model and the :class:`TemporalModel`.

The file format and its checked header live in :mod:`affectseq.modelfile.sequence` (stage 4);
this module only turns a checked header and its tensors into modules, here because
``TemporalModel`` is a stage-6 network. ``predict`` loads sequence models through
:func:`load_sequence_bundle`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from affectseq.errors import InputError
from affectseq.models.temporal import TemporalConfig, TemporalModel
from affectseq.modelfile.sequence import (
    load_bundled_frame_model,
    read_sequence_header,
    read_temporal_state,
    resolve_sequence_checkpoint,
)


@dataclass
class SequenceBundle:
    """Everything ``predict`` needs: the frame model (None for external features) and the temporal model.

    ``fps`` is the frame rate of the features the temporal model was trained on and
    ``window_sec`` its window in seconds (both None when the store did not know it).
    """

    frame_model: torch.nn.Module | None
    temporal_model: TemporalModel
    encoder_spec: dict[str, Any]
    mode: str
    window: int
    tasks: tuple[str, ...]
    expr_classes: tuple[str, ...]
    fps: float | None = None
    window_sec: float | None = None
    header: dict[str, Any] = field(repr=False, default_factory=dict)


def load_sequence_checkpoint(path: str | os.PathLike[str], device: str = "cpu") -> tuple[TemporalModel, dict]:
    """(temporal model in eval mode, checked header) from a sequence-model file."""
    header = read_sequence_header(path)
    try:
        config = TemporalConfig(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in header["model_config"].items()})
        model = TemporalModel(header["input_dim"], header["heads"], config)
        model.load_state_dict(read_temporal_state(path))
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise InputError(path, f"sequence model does not match its header ({reason})") from None
    return model.to(device).eval(), header


def load_sequence_bundle(path_or_run_dir: str | os.PathLike[str], device: str = "cpu") -> SequenceBundle:
    """Rebuild frame model + temporal model from a sequence run directory or model file.

    The frame model is the embedded copy (sha256-checked), else the file of the recorded
    name beside the bundle; bundles of external features have none.
    """
    path: Path = resolve_sequence_checkpoint(path_or_run_dir)
    temporal, header = load_sequence_checkpoint(path, device)
    return SequenceBundle(
        frame_model=load_bundled_frame_model(path, header, device),
        temporal_model=temporal,
        encoder_spec=dict(header["encoder"] or {}),
        mode=header["mode"],
        window=header["window"],
        tasks=tuple(header["tasks"]),
        expr_classes=tuple(header["expr_classes"]),
        fps=header["fps"],
        window_sec=header["window_sec"],
        header=header,
    )
