"""Live (streaming) prediction: push frames one at a time, get each frame's face rows at once.

:class:`LivePredictor` is the causal mode of ``predict`` for a camera or a stream:
no look-ahead and bounded memory. It uses predict's own pieces: the face stage of
:mod:`affectseq.faces.stream` (tracking, the main-face rule, alignment), the model's
frame stage, and one :meth:`~affectseq.predict.stages.TemporalStage.stream` per face
track, stepped on every frame (a gap on frames where a known track is missing). Its rows
therefore equal those of ``predict_video_table(..., PredictOptions(mode="causal"))`` on the
same frames. A track whose stream is idle (nothing in it can matter any more: the
smoothing window or the sequence model's window has only gaps) is forgotten.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from affectseq.errors import ConfigError
from affectseq.faces.stream import FaceSource, FaceStage, WorkFrame
from affectseq.faces.working import working_frame
from affectseq.predict.stages import ModelBundle


class LivePredictor:
    """Causal per-frame prediction with a :class:`ModelBundle` and a face source.

    ``process(frame_idx, time_sec, rgb)`` returns one dict per face on the frame
    with ``frame_idx``, ``time_sec``, ``face_id``, ``box``, ``det_score``,
    ``expr_prob`` (C,) and ``va`` (2,) when the model has a VA head. ``fps``: the
    stream's frame rate, which converts a sequence model's window by time (None: as trained).
    """

    def __init__(self, bundle: ModelBundle, face_source: FaceSource,
                 aligner: Callable[[np.ndarray, list[Any]], np.ndarray] | None = None, *,
                 main_face_only: bool = False, fps: float | None = None):
        if not bundle.causal_ok:
            raise ConfigError(f"model {bundle.info.model_id} is bidirectional and cannot run live")
        self.bundle = bundle
        self.faces = FaceStage(face_source, main_face_only=main_face_only, aligner=aligner)
        self.faces.reset()
        self.temporal = bundle.temporal_stage.at_fps(fps)
        self._tracks: dict[int, Any] = {}

    def process(self, frame_idx: int, time_sec: float, rgb: np.ndarray) -> list[dict[str, Any]]:
        """Rows for this frame (empty list when no face); frames must come in order."""
        work, scale = working_frame(rgb)
        return self.process_work(WorkFrame(frame_idx, float(time_sec), work, scale))

    def planner(self) -> Any:
        """The face source's :class:`~affectseq.faces.schedule.FramePlanner`, or None: its ``plan(work.rgb)``
        runs the full detections of each frame, in order, in another thread (as ``predict`` does ahead);
        every frame's plan must then go to :meth:`process_work`. Call once, before the first frame."""
        return self.faces.planner()

    def process_work(self, work: WorkFrame, plan: Any = None) -> list[dict[str, Any]]:
        """:meth:`process` for a frame already shrunk to its working copy (and planned, with a planner)."""
        frame_idx, time_sec = work.frame_idx, work.time_sec
        found = self.faces(work, plan).faces
        outputs = self.bundle.frame_stage(np.stack([f.crop for f in found])) if found else {}
        rows = []
        for i, face in enumerate(found):
            track = self._tracks.get(face.face_id)
            if track is None:
                track = self._tracks[face.face_id] = self.temporal.stream()
            result = track.step(time_sec, {k: v[i] for k, v in outputs.items()})
            rows.append({"frame_idx": frame_idx, "time_sec": time_sec, "face_id": face.face_id,
                         "box": face.box, "det_score": face.score, **result})
        present = {face.face_id for face in found}
        for face_id in list(self._tracks):
            if face_id not in present:
                self._tracks[face_id].step(time_sec, None)
            if self._tracks[face_id].idle:
                del self._tracks[face_id]  # bounded memory on endless streams
        return rows
