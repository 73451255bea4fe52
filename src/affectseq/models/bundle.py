"""A sequence-model file rebuilt into networks: the frame model and the :class:`TemporalModel`.

The file format and its checked header live in :mod:`affectseq.modelfile.sequence` (stage 4);
the networks are built by :mod:`affectseq.models.factory`. ``predict`` loads sequence models
through :func:`load_sequence_bundle`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from affectseq.modelfile.sequence import resolve_sequence_checkpoint
from affectseq.models.factory import load_bundled_frame_model, load_sequence_checkpoint
from affectseq.models.temporal import TemporalModel


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
