"""Sequence bundles in ``predict``: frame-encoder features per face, then the trained temporal model per track.

A bundle from ``affectseq train-sequence`` (``load_sequence_bundle``) holds the
frame model that made its training features and the temporal model. Over each
face track the temporal model sees a regular timeline of processed frames;
frames where the face is missing are gaps (zero features, mask False), exactly
as in training windows (:mod:`affectseq.sequences.windows`).

* every ``seq2one`` model (offline or causal): the prediction for frame ``t`` comes
  from the window of the model's length ``W`` *before* it, frames ``[t - W, t)``,
  because that is what it was trained on (:mod:`affectseq.sequences.windows`: the
  window ``[t - W, t)`` predicts the label of frame ``t``; frame ``t``'s own face is
  not an input). A frame whose window holds no face at all (the first frame of a
  track, or one after a gap of ``W`` or more frames) gets no prediction (NaN):
  training has no such windows;
* ``causal`` (streaming) with a ``seq2seq`` model: frame ``t`` takes the last output
  of the trailing window ``(t - W, t]`` (row ``t`` of a window predicts frame ``t``),
  what :class:`affectseq.models.streaming.StreamingPredictor` gives live;
* ``offline`` with a ``seq2seq`` model (bidirectional allowed): windows of ``W``
  frames every ``W/2``; each frame takes the output of the window where it is
  most central, so it sees context on both sides.

Causal windows are built by one piece, :meth:`SequenceTemporal.window_for` over a
:class:`~affectseq.models.streaming.StreamingPredictor` ring buffer: live prediction steps
it frame by frame (:meth:`SequenceTemporal.stream`), ``predict`` runs the same windows in
batches. The window covers the same *time* as in training: a bundle that records the
frame rate of its training features (header ``fps``, ``window_sec``) has its window
converted to each video's processed frame rate (:meth:`SequenceTemporal.at_fps`, e.g.
100 frames at 30 fps = 83 frames at 25 fps); an older bundle keeps its window in frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from affectseq.errors import InputError
from affectseq.predict.stages import ModelBundle, ModelInfo
from affectseq.utils.hashing import sha256_file

_PREDICT_KEYS = ("expr_prob", "va")  # of the head outputs, what predict reports (no AUs)
_CHUNK = 64  # windows per temporal-model batch (bounds memory: 64 x W x D floats)


class SequenceTemporal:
    """Temporal stage running a :class:`affectseq.models.temporal.TemporalModel` (any architecture) over each track.

    ``window``: the model's window in frames. ``trained_fps`` / ``window_sec``: the frame
    rate of the features it was trained on and its window in seconds (from the bundle;
    None for old bundles); :meth:`at_fps` converts the window to a video's frame rate by time.
    """

    def __init__(self, model, window: int, device: str = "cpu", trained_fps: float | None = None,
                 window_sec: float | None = None, video_fps: float | None = None):
        self.model = model
        self.window = max(int(window), 1)
        self.device = device
        self.seq2seq = model.config.mode == "seq2seq"
        self.trained_fps = trained_fps
        self.window_sec = window_sec
        self.video_fps = video_fps

    def at_fps(self, fps: float | None) -> "SequenceTemporal":
        """This stage for frames processed at ``fps``: a window of the same seconds as in training.

        Unchanged (the recorded window in frames) when the bundle records no training fps
        or ``fps`` is unknown.
        """
        if not fps or not self.trained_fps:
            return self
        seconds = self.window_sec or self.window / self.trained_fps
        return SequenceTemporal(self.model, max(1, round(seconds * fps)), self.device, self.trained_fps,
                                seconds, video_fps=float(fps))

    def describe(self) -> dict[str, Any]:
        """The window used, and whether it was resampled from the training frame rate (for summary.json)."""
        info: dict[str, Any] = {"kind": "sequence model", "window_frames": self.window,
                                "trained_fps": self.trained_fps, "video_fps": self.video_fps}
        if self.video_fps is None:
            info["window_sec"] = self.window_sec
            info["note"] = (f"window {self.window} frames as trained" if self.trained_fps else
                            f"no training fps recorded in the bundle: window kept at {self.window} frames")
            return info
        info["window_sec"] = round(self.window_sec, 4)
        info["note"] = (f"window {self.window_sec:.2f} s: {self.window} frames at {self.video_fps:.2f} fps "
                        f"(trained at {self.trained_fps:.2f} fps)")
        return info

    def stream(self) -> "_SequenceStream":
        """One track, one frame at a time (live): the same windows as :meth:`run_track` in causal mode."""
        return _SequenceStream(self)

    def run_track(
        self, outputs: dict[str, np.ndarray], time_sec: np.ndarray, step_idx: np.ndarray, mode: str
    ) -> dict[str, np.ndarray]:
        feats = outputs["features"]
        pos = np.asarray(step_idx, np.int64) - int(step_idx[0])
        if mode == "offline" and self.seq2seq:
            length = int(pos[-1]) + 1
            dense = np.zeros((length, feats.shape[1]), np.float32)
            mask = np.zeros(length, bool)
            dense[pos], mask[pos] = feats, True
            return _finite({key: value[pos] for key, value in self._centred(dense, mask).items()})
        return self._trailing(feats, pos)

    def predictor(self) -> Any:
        """A :class:`~affectseq.models.streaming.StreamingPredictor` keeping this stage's window."""
        from affectseq.models.streaming import StreamingPredictor

        return StreamingPredictor(self.model, window=self.window, policy="window", device=self.device)

    def window_for(self, ring: Any, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add a frame with a face to ``ring`` and return the window that predicts it.

        seq2one: ``[t - W, t)``, the frames before ``t`` (as in training); seq2seq: ``(t - W, t]``.
        """
        if self.seq2seq:
            ring.add(features)
            return ring.last_window()
        window = ring.last_window()  # not changed by add (a fresh array each time)
        ring.add(features)
        return window

    def predict(self, ring: Any, x: np.ndarray, m: np.ndarray) -> dict[str, np.ndarray]:
        """``expr_prob`` / ``va`` of a batch of windows; NaN where a window holds no face (training has none)."""
        result = {k: v for k, v in ring.run(x, m, last=True).items() if k in _PREDICT_KEYS}
        empty = ~m.any(axis=1)
        _finite({k: v[~empty] for k, v in result.items()})  # NaN below means "no face in the window", only
        return {k: np.where(empty[:, None], np.nan, v).astype(np.float32) for k, v in result.items()}

    def _trailing(self, feats: np.ndarray, pos: np.ndarray) -> dict[str, np.ndarray]:
        """Causal outputs at track positions ``pos``: :meth:`window_for` over the track, run in batches."""
        ring = self.predictor()
        parts: dict[str, list[np.ndarray]] = {}
        for x, m in _batches(self._windows(ring, feats, pos), _CHUNK):
            for key, value in self.predict(ring, x, m).items():
                parts.setdefault(key, []).append(value)
        return {k: np.concatenate(v) for k, v in parts.items()}

    def _windows(self, ring: Any, feats: np.ndarray, pos: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        previous = -1
        for row, p in zip(feats, pos.tolist()):
            for _ in range(p - previous - 1):  # processed frames without the face
                ring.add(None)
            previous = p
            yield self.window_for(ring, row)

    def _centred(self, dense: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        """seq2seq offline: windows every W/2 frames; each frame keeps its most central window's output."""
        w, length = self.window, len(dense)
        ring = self.predictor()
        hop = max(w // 2, 1)
        starts = list(range(0, max(length - w, 0) + 1, hop))
        if starts[-1] + w < length:
            starts.append(length - w)
        result: dict[str, np.ndarray] = {}
        best = np.full(length, np.inf)
        for start in starts:
            stop = min(start + w, length)
            x = np.zeros((1, w, dense.shape[1]), np.float32)
            m = np.zeros((1, w), bool)
            x[0, :stop - start], m[0, :stop - start] = dense[start:stop], mask[start:stop]
            out = {k: v for k, v in ring.run(x, m).items() if k in _PREDICT_KEYS}
            frames = np.arange(start, stop)
            dist = np.abs(frames - (start + (w - 1) / 2))
            take = dist < best[frames]
            for key, value in out.items():
                if key not in result:
                    result[key] = np.zeros((length, value.shape[-1]), np.float32)
                result[key][frames[take]] = value[0, :stop - start][take]
            best[frames[take]] = dist[take]
        return result


class _SequenceStream:
    """One track's causal state: the model's window as a ring buffer (see :meth:`SequenceTemporal.stream`)."""

    def __init__(self, stage: SequenceTemporal):
        self.stage = stage
        self.ring = stage.predictor()
        self.absent = 0

    def step(self, time_sec: float, outputs: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        if outputs is None:
            self.ring.add(None)
            self.absent += 1
            return {}
        self.absent = 0
        x, m = self.stage.window_for(self.ring, outputs["features"])
        return {k: v[0] for k, v in self.stage.predict(self.ring, x[None], m[None]).items()}

    @property
    def idle(self) -> bool:
        # A whole window of gaps is the same as a fresh start.
        return self.absent >= self.stage.window


def _batches(windows: Iterator[tuple[np.ndarray, np.ndarray]], size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    xs: list[np.ndarray] = []
    ms: list[np.ndarray] = []
    for x, m in windows:
        xs.append(x)
        ms.append(m)
        if len(xs) == size:
            yield np.stack(xs), np.stack(ms)
            xs, ms = [], []
    if xs:
        yield np.stack(xs), np.stack(ms)


def load_sequence_model(path: Path, *, model_id: str, backend: str, device: str) -> ModelBundle:
    """A :class:`ModelBundle` from a sequence checkpoint (frame encoder features + temporal model).

    ``backend`` (``"onnx"`` or ``"torch"``) runs the frame encoder: on ONNX Runtime its export
    stops at the features (cached by the bundle's sha256, torch as the fallback, as for frame
    models); the temporal model runs on torch on ``device``.
    """
    from affectseq.models.bundle import load_sequence_bundle
    from affectseq.predict.onnx_backend import build_frame_stage

    bundle = load_sequence_bundle(path, device=device)  # checks the frame model's sha256 either way
    header = bundle.header
    frame_model = bundle.frame_model
    if frame_model is None:
        raise InputError(path, "sequence model was trained on external features and has no frame model, "
                               "so it cannot run on raw video")
    frame_stage, backend = build_frame_stage(backend, frame_model.spec, (), path, frame_model.to, device,
                                             output="features")
    temporal = bundle.temporal_model.to(device).eval()
    heads = dict(temporal.head_sizes)
    classes = tuple(bundle.expr_classes) if "expr" in heads else ()
    info = ModelInfo(
        model_id=model_id,
        kind="sequence",
        classes=classes,
        has_va="va" in heads,
        source=str(path),
        sha256=sha256_file(path),
        temporal=f"{temporal.describe()}, window {bundle.window} frames",
        extra={"encoder": frame_model.spec.name, "window": bundle.window, "backend": backend,
               "device": device, "trained_fps": _positive(header.get("fps")),
               "window_sec": _positive(header.get("window_sec"))},
    )
    if bundle.mode == "clip":  # one prediction per clip (track): affectseq.predict.clip
        from affectseq.predict.clip import ClipTemporal

        info.temporal = f"{temporal.describe()}, {bundle.window} frames sampled per clip"
        return ModelBundle(frame_stage=frame_stage, temporal_stage=ClipTemporal(temporal, bundle.window, device),
                           info=info, causal_ok=temporal.causal)
    return ModelBundle(
        frame_stage=frame_stage,
        temporal_stage=SequenceTemporal(temporal, bundle.window, device, trained_fps=_positive(header.get("fps")),
                                        window_sec=_positive(header.get("window_sec"))),
        info=info,
        # A non-causal (bidirectional) seq2seq model needs frames after t; seq2one windows end at t either way.
        causal_ok=temporal.causal or temporal.config.mode != "seq2seq",
    )


def _positive(value: Any) -> float | None:
    """A header's optional rate or duration: a positive float, else None (absent in older bundles)."""
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _finite(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``outputs`` when all finite; :class:`~affectseq.utils.numbers.NonFiniteOutput` otherwise (NaN weights)."""
    from affectseq.utils.numbers import NonFiniteOutput, nonfinite_summary

    bad = nonfinite_summary(outputs)
    if bad:
        raise NonFiniteOutput(bad)
    return outputs
