"""The pluggable stages of video prediction and the model bundle that carries them.

``predict`` runs: decode -> face stream (:mod:`affectseq.faces.stream`) -> **frame stage**
(batched; a CNN giving class probabilities, or encoder features for a learned
temporal model) -> **temporal stage** (per face track) -> table. Any object with
the methods below plugs in; :mod:`affectseq.predict.model` builds them from a
checkpoint (the shipped default, a user's frame model, or a sequence bundle).

A temporal stage has one causal implementation, :meth:`TemporalStage.stream`: a
per-track state whose ``step`` takes one processed frame at a time. Live prediction
(:class:`~affectseq.predict.streaming.LivePredictor`) calls it frame by frame and
``predict --mode causal`` runs the same steps over each track (:func:`run_causal`; a
sequence model batches the very same windows); ``--mode offline`` may look ahead
(:meth:`TemporalStage.run_track`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from affectseq.predict.smoothing import DEFAULT_SMOOTHING_SEC, CausalSmoother, smooth_track


@runtime_checkable
class FrameStage(Protocol):
    """Batched per-face inference: uint8 RGB aligned crops (N, H, W, 3) -> named float arrays (N, ...).

    Outputs use the keys ``"expr_prob"`` (N, C), ``"va"`` (N, 2) and/or
    ``"features"`` (N, D); the temporal stage turns them into final predictions.
    """

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]: ...


@runtime_checkable
class TrackStream(Protocol):
    """The causal state of one face track: call :meth:`step` once per processed frame, in order."""

    def step(self, time_sec: float, outputs: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        """Final ``expr_prob`` (C,) / ``va`` (2,) of this frame from the face's frame-stage ``outputs``
        (one row each); ``None``: the track's face is missing on this frame (a gap), returns ``{}``."""
        ...

    @property
    def idle(self) -> bool:
        """True when nothing in the state can matter to a later frame: the track may be forgotten."""
        ...


@runtime_checkable
class TemporalStage(Protocol):
    """Per-track temporal model: frame-stage outputs of one face track -> final ``expr_prob``/``va``.

    ``time_sec`` (T,) and ``step_idx`` (T,) list the track's frames with a face,
    in order; ``step_idx`` counts processed frames (``frame_idx // stride``), so
    gaps (processed frames where the face is missing) show as jumps a stage can mask. ``mode`` is ``"offline"`` (whole track,
    may look ahead) or ``"causal"`` (output at t uses frames <= t only: the steps of :meth:`stream`).
    """

    def run_track(
        self, outputs: dict[str, np.ndarray], time_sec: np.ndarray, step_idx: np.ndarray, mode: str
    ) -> dict[str, np.ndarray]: ...

    def stream(self) -> TrackStream:
        """A fresh causal state for one track (live prediction; ``run_track(mode="causal")`` steps it)."""
        ...

    def at_fps(self, fps: float | None) -> "TemporalStage":
        """This stage for frames processed at ``fps`` (a window in frames is converted by time)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What ``summary.json`` records about the temporal stage (window, its unit, any resampling)."""
        ...


def run_causal(stage: TemporalStage, outputs: dict[str, np.ndarray], time_sec: np.ndarray,
               step_idx: np.ndarray) -> dict[str, np.ndarray]:
    """A whole track in causal mode: ``stage.stream()`` stepped over its frames, gaps included.

    The same steps as live prediction, so the two agree exactly.
    """
    stream = stage.stream()
    steps = np.asarray(step_idx, np.int64)
    rows: list[dict[str, np.ndarray]] = []
    for i, (t, s) in enumerate(zip(np.asarray(time_sec, np.float64).tolist(), steps.tolist())):
        if i:
            # Processed frames without the face; their exact times are not known here and no
            # stage's gap step uses one before the next face arrives (at time t).
            for _ in range(s - int(steps[i - 1]) - 1):
                stream.step(t, None)
        rows.append(stream.step(t, {k: v[i] for k, v in outputs.items()}))
    keys = rows[0].keys() if rows else ()
    return {k: np.stack([r[k] for r in rows]).astype(np.float32) for k in keys}


class _SmoothingStream:
    """One track's trailing moving average (:class:`~affectseq.predict.smoothing.CausalSmoother`)."""

    def __init__(self, window_sec: float):
        self.window_sec = float(window_sec)
        self._smoothers: dict[str, CausalSmoother] = {}  # one per output (class probabilities, VA)
        self._now = self._last = None  # type: float | None

    def step(self, time_sec: float, outputs: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        self._now = float(time_sec)
        if outputs is None:
            return {}
        self._last = self._now
        result = {}
        for key in ("expr_prob", "va"):
            if key in outputs:
                smoother = self._smoothers.setdefault(key, CausalSmoother(self.window_sec))
                result[key] = smoother.update(0, time_sec, outputs[key]).astype(np.float32)
        return result

    @property
    def idle(self) -> bool:
        return self._last is None or self._now - self._last >= self.window_sec  # type: ignore[operator]


@dataclass
class SmoothingTemporal:
    """The default temporal stage: a masked moving average over ``window_sec`` (see :mod:`.smoothing`)."""

    window_sec: float = DEFAULT_SMOOTHING_SEC

    def run_track(
        self, outputs: dict[str, np.ndarray], time_sec: np.ndarray, step_idx: np.ndarray, mode: str
    ) -> dict[str, np.ndarray]:
        if mode == "causal":
            return run_causal(self, outputs, time_sec, step_idx)
        return {key: smooth_track(outputs[key], time_sec, self.window_sec, mode).astype(np.float32)
                for key in ("expr_prob", "va") if key in outputs}

    def stream(self) -> TrackStream:
        return _SmoothingStream(self.window_sec)

    def at_fps(self, fps: float | None) -> "SmoothingTemporal":
        return self  # the window is in seconds already

    def describe(self) -> dict[str, Any]:
        return {"kind": "moving average", "window_sec": self.window_sec}


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
