"""The pluggable stages of video prediction and the model bundle that carries them.

``predict`` runs: video -> tracked faces -> aligned crops -> **frame stage**
(batched; a CNN giving class probabilities, or encoder features for a learned
temporal model) -> **temporal stage** (per face track) -> rows. Any object with
the methods below plugs in; :mod:`affectseq.predict.model` builds them from a
checkpoint (the shipped default, a user's frame model, or a sequence bundle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from affectseq.predict.smoothing import DEFAULT_SMOOTHING_SEC, smooth_track


@runtime_checkable
class FrameStage(Protocol):
    """Batched per-face inference: uint8 RGB aligned crops (N, H, W, 3) -> named float arrays (N, ...).

    Outputs use the keys ``"expr_prob"`` (N, C), ``"va"`` (N, 2) and/or
    ``"features"`` (N, D); the temporal stage turns them into final predictions.
    """

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]: ...


@runtime_checkable
class TemporalStage(Protocol):
    """Per-track temporal model: frame-stage outputs of one face track -> final ``expr_prob``/``va``.

    ``time_sec`` (T,) and ``step_idx`` (T,) list the track's frames with a face,
    in order; ``step_idx`` counts processed frames (``frame_idx // stride``), so
    gaps (processed frames where the face is missing) show as jumps a stage can mask. ``mode`` is ``"offline"`` (whole track,
    may look ahead) or ``"causal"`` (output at t uses frames <= t only).
    """

    def run_track(
        self, outputs: dict[str, np.ndarray], time_sec: np.ndarray, step_idx: np.ndarray, mode: str
    ) -> dict[str, np.ndarray]: ...


@dataclass
class SmoothingTemporal:
    """The default temporal stage: a masked moving average over ``window_sec`` (see :mod:`.smoothing`)."""

    window_sec: float = DEFAULT_SMOOTHING_SEC

    def run_track(
        self, outputs: dict[str, np.ndarray], time_sec: np.ndarray, step_idx: np.ndarray, mode: str
    ) -> dict[str, np.ndarray]:
        result: dict[str, np.ndarray] = {}
        for key in ("expr_prob", "va"):
            if key in outputs:
                result[key] = smooth_track(outputs[key], time_sec, self.window_sec, mode).astype(np.float32)
        return result


@dataclass
class ModelInfo:
    """What outputs and summaries record about the model that made a prediction."""

    model_id: str                      # "default" or the checkpoint's file name
    kind: str                          # "frame" (CNN + smoothing) or "sequence" (CNN features + RNN)
    classes: tuple[str, ...]           # canonical expression classes of the head
    has_va: bool
    source: str | None = None          # checkpoint path
    sha256: str | None = None
    temporal: str = ""                 # human description, e.g. "moving average 0.5 s"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.model_id, "kind": self.kind, "classes": list(self.classes), "has_va": self.has_va,
            "source": self.source, "sha256": self.sha256, "temporal": self.temporal, **self.extra,
        }


@dataclass
class ModelBundle:
    """A ready-to-run model: frame stage + temporal stage + info. ``causal_ok`` is False for
    bidirectional temporal models, which cannot run in streaming mode."""

    frame_stage: FrameStage
    temporal_stage: TemporalStage
    info: ModelInfo
    causal_ok: bool = True
