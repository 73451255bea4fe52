"""Live (streaming) prediction: push frames one at a time, get each frame's face rows at once.

:class:`LivePredictor` is the causal mode of ``predict`` for a camera or a stream:
no look-ahead and bounded memory. Its rows equal those of
``predict_video_table(..., PredictOptions(mode="causal"))`` on the same frames:

* frame models: per-track :class:`~affectseq.predict.smoothing.CausalSmoother`;
* sequence bundles: one :class:`affectseq.models.streaming.StreamingPredictor`
  (window policy) per track, fed a gap for each frame a known track is missing;
  a track absent for a whole window is forgotten (its window would be all gaps,
  the same as a fresh start). A ``seq2one`` model's output after frame ``t - 1``
  is its prediction for frame ``t`` (it was trained on windows ``[t - W, t)``), so
  frame ``t`` reports the output from before its own features are pushed; the
  first frame of a (fresh) track has no prediction (NaN), as in
  :mod:`affectseq.predict.sequence`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from affectseq.errors import ConfigError
from affectseq.predict.faces import FaceSource, align_crops
from affectseq.predict.smoothing import CausalSmoother
from affectseq.predict.stages import ModelBundle, SmoothingTemporal


class LivePredictor:
    """Causal per-frame prediction with a :class:`ModelBundle` and a :class:`FaceSource`.

    ``process(frame_idx, time_sec, rgb)`` returns one dict per face on the frame
    with ``frame_idx``, ``time_sec``, ``face_id``, ``box``, ``det_score``,
    ``expr_prob`` (C,) and ``va`` (2,) when the model has a VA head.
    """

    def __init__(self, bundle: ModelBundle, face_source: FaceSource,
                 aligner: Callable[[np.ndarray, list[Any]], np.ndarray] = align_crops):
        if not bundle.causal_ok:
            raise ConfigError(f"model {bundle.info.model_id} is bidirectional and cannot run live")
        self.bundle = bundle
        self.face_source = face_source
        self.aligner = aligner
        temporal = bundle.temporal_stage
        self._smoothers = ({key: CausalSmoother(temporal.window_sec) for key in ("expr_prob", "va")}
                           if isinstance(temporal, SmoothingTemporal) else None)
        self._window = getattr(temporal, "window", None)
        self._streams: dict[int, Any] = {}
        self._absent: dict[int, int] = {}
        # Per track: the stream's output after its latest frame (a seq2one model's prediction for the next).
        self._next: dict[int, dict[str, np.ndarray]] = {}
        model = getattr(temporal, "model", None)
        self._seq2one = getattr(getattr(model, "config", None), "mode", None) == "seq2one"

    def process(self, frame_idx: int, time_sec: float, rgb: np.ndarray) -> list[dict[str, Any]]:
        """Rows for this frame (empty list when no face); frames must come in order."""
        faces = self.face_source.update(frame_idx, rgb)
        if not faces:
            self._advance_absent(set())
            return []
        crops = self.aligner(rgb, [det for _, det in faces])
        outputs = self.bundle.frame_stage(crops)
        rows = []
        for i, (face_id, det) in enumerate(faces):
            result = self._temporal(int(face_id), time_sec, {k: v[i] for k, v in outputs.items()})
            row = {"frame_idx": frame_idx, "time_sec": time_sec, "face_id": int(face_id),
                   "box": tuple(float(v) for v in det.box), "det_score": float(det.score), **result}
            rows.append(row)
        self._advance_absent({int(f) for f, _ in faces})
        if self._smoothers is not None and frame_idx % 256 == 0:
            for smoother in self._smoothers.values():
                smoother.prune(time_sec)  # bounded memory on endless streams
        return rows

    def _temporal(self, face_id: int, time_sec: float, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._smoothers is not None:
            return {key: self._smoothers[key].update(face_id, time_sec, value).astype(np.float32)
                    for key, value in out.items() if key in self._smoothers}
        from affectseq.models.streaming import StreamingPredictor

        stream = self._streams.get(face_id)
        if stream is None:
            temporal = self.bundle.temporal_stage
            stream = StreamingPredictor(temporal.model, window=self._window, policy="window",
                                        device=temporal.device)
            self._streams[face_id] = stream
        pushed = stream.push(out["features"])
        previous = self._next.get(face_id)
        self._next[face_id] = pushed
        if self._seq2one:
            pushed = previous if previous is not None else {k: np.full_like(v, np.nan) for k, v in pushed.items()}
        result = {}
        if "expr" in pushed:
            result["expr_prob"] = pushed["expr"]
        if "va" in pushed:
            result["va"] = pushed["va"]
        return result

    def _advance_absent(self, present: set[int]) -> None:
        """Feed a gap to every known sequence track missing on this frame; forget long-gone tracks."""
        for face_id in list(self._streams):
            if face_id in present:
                self._absent[face_id] = 0
                continue
            self._next[face_id] = self._streams[face_id].push(None, has_face=False)
            self._absent[face_id] = self._absent.get(face_id, 0) + 1
            if self._absent[face_id] >= (self._window or 1):
                del self._streams[face_id], self._absent[face_id], self._next[face_id]
