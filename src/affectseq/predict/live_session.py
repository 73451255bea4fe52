"""One live session: frames in, JSON-ready rows out, with the counts and latencies of the end summary.

:class:`LiveSession` wraps :class:`~affectseq.predict.streaming.LivePredictor` (the causal
face stage + frame model + temporal stage of ``predict --mode causal``) and turns its
per-face dicts into rows::

    frame_idx, time_sec, wall_time, face_id, box [x1, y1, x2, y2], det_score, label,
    prob_<class>..., [valence, arousal]

one per face per processed frame; a processed frame without a face gives one row whose
face fields are null (as ``frames.csv`` does). ``affectseq live``, ``affectseq.live()`` and
the ``/live`` page of ``affectseq serve`` all make their rows here. Memory is bounded:
the predictor forgets idle tracks and latencies go into a fixed histogram.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from affectseq.faces.settings import FaceSettings
from affectseq.faces.stream import WorkFrame, make_tracker
from affectseq.faces.tracking import MainFace
from affectseq.faces.working import working_frame
from affectseq.predict.live_capture import CapturedFrame
from affectseq.predict.stages import ModelBundle
from affectseq.predict.streaming import LivePredictor
from affectseq.predict.table import BOX_COLUMNS, VA_COLUMNS, prob_column
from affectseq.utils.threads import torch_threads

# Latencies are counted in 1 ms bins up to this bound (the last bin holds anything slower):
# exact-to-the-millisecond percentiles in fixed memory, however long a session runs.
LATENCY_MAX_MS = 10_000


class LatencyHistogram:
    """Capture -> row latencies in 1 ms bins: :meth:`add` seconds, :meth:`percentile` in ms."""

    def __init__(self) -> None:
        self.counts = np.zeros(LATENCY_MAX_MS + 1, np.int64)
        self.n = 0

    def add(self, seconds: float) -> None:
        self.counts[min(max(int(round(seconds * 1000.0)), 0), LATENCY_MAX_MS)] += 1
        self.n += 1

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) in ms, None before the first row."""
        if not self.n:
            return None
        rank = max(1, math.ceil(q / 100.0 * self.n))
        return float(np.searchsorted(np.cumsum(self.counts), rank))


@dataclass
class LiveStats:
    """What the end summary says: frames offered/processed/dropped, processed fps, latency median/p95."""

    offered: int = 0
    processed: int = 0
    dropped: int = 0
    rows: int = 0
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    @property
    def seconds(self) -> float:
        return (self.ended_at or time.monotonic()) - self.started_at

    def to_dict(self) -> dict[str, Any]:
        seconds = self.seconds
        return {"frames_offered": self.offered, "frames_processed": self.processed, "frames_dropped": self.dropped,
                "processed_fraction": round(self.processed / self.offered, 4) if self.offered else None,
                "rows": self.rows, "seconds": round(seconds, 3),
                "processed_fps": round(self.processed / seconds, 2) if seconds > 0 else None,
                "latency_ms_median": self.latency.percentile(50), "latency_ms_p95": self.latency.percentile(95)}

    def format(self) -> str:
        d = self.to_dict()
        fraction = "" if d["processed_fraction"] is None else f" ({100 * d['processed_fraction']:.1f}%)"
        latency = ("no rows" if d["latency_ms_median"] is None
                   else f"median {d['latency_ms_median']:.0f} ms, p95 {d['latency_ms_p95']:.0f} ms")
        return (f"live: {d['frames_offered']} frames offered, {d['frames_processed']} processed{fraction}, "
                f"{d['frames_dropped']} dropped in {d['seconds']:.1f} s; processed {d['processed_fps'] or 0:.1f} "
                f"fps; capture->row latency {latency}")


def row_columns(classes: tuple[str, ...], has_va: bool) -> list[str]:
    """The keys of every live row, in order."""
    cols = ["frame_idx", "time_sec", "wall_time", "face_id", "box", "det_score", "label"]
    cols += [prob_column(c) for c in classes]
    return cols + (list(VA_COLUMNS) if has_va else [])


def csv_columns(classes: tuple[str, ...], has_va: bool) -> list[str]:
    """``--csv``'s columns: the row's keys with ``box`` as ``x1..y2`` (``frames.csv``'s names)."""
    cols = row_columns(classes, has_va)
    at = cols.index("box")
    return cols[:at] + list(BOX_COLUMNS) + cols[at + 1:]


class LiveSession:
    """Causal prediction on captured frames, one at a time: :meth:`process` -> rows.

    ``bundle``: a loaded :class:`ModelBundle` (several sessions may share one: each session
    has its own tracker and temporal state); ``faces``: the face settings
    (:mod:`affectseq.faces.settings`). ``fps``: the source's rate (a sequence model's
    window is converted by time); ``main_flag`` adds a ``main`` key (the one main-face rule,
    :class:`~affectseq.faces.tracking.MainFace`) for displays that follow one face.
    """

    def __init__(self, bundle: ModelBundle, faces: FaceSettings = FaceSettings(), *, fps: float | None = None,
                 main_flag: bool = False, face_source: Any = None):
        source = face_source if face_source is not None else make_tracker(faces.detector, faces.detect_every,
                                                                          faces.main_face_only)
        self.predictor = LivePredictor(bundle, source, main_face_only=faces.main_face_only, fps=fps)
        self.classes = tuple(bundle.info.classes)
        self.has_va = bool(bundle.info.has_va)
        self.columns = row_columns(self.classes, self.has_va)
        self.stats = LiveStats()
        self._main = MainFace() if main_flag else None

    def warm_up(self, height: int = 360, width: int = 640) -> None:
        """Run the detector and the frame model once on a blank frame, so the first real frame is not late."""
        detector = getattr(self.predictor.faces.source, "detector", None)
        if detector is not None:
            detector.detect(np.zeros((height, width, 3), np.uint8))
        self.predictor.bundle.frame_stage(np.zeros((1, 112, 112, 3), np.uint8))

    def planned(self, frames: Iterator[CapturedFrame]) -> Iterator[tuple[CapturedFrame, WorkFrame, Any]]:
        """Each frame with its working copy and its detection plan: run this in another thread, ahead of
        :meth:`process` (``predict``'s split: full detections overlap tracking and the model)."""
        planner = self.predictor.planner()
        with _one_torch_thread():
            for frame in frames:
                work, scale = working_frame(frame.rgb)
                work_frame = WorkFrame(frame.frame_idx, float(frame.time_sec), work, scale)
                yield frame, work_frame, planner.plan(work) if planner is not None else None

    def process(self, frame: CapturedFrame, work: WorkFrame | None = None, plan: Any = None) -> list[dict[str, Any]]:
        """The rows of one frame (frames must come in order; a frame may be skipped: it was dropped).

        ``work``/``plan``: the frame as :meth:`planned` prepared it (then every frame must come that way).
        """
        with _one_torch_thread():
            if work is None:
                found = self.predictor.process(frame.frame_idx, frame.time_sec, frame.rgb)
            else:
                found = self.predictor.process_work(work, plan)
        rows = [self._row(frame, face) for face in found] or [self._empty_row(frame)]
        if self._main is not None:
            main = self._main.select([r["face_id"] for r in rows if r["face_id"] is not None],
                                     [_area(r["box"]) for r in rows if r["face_id"] is not None])
            for i, row in enumerate(rows):
                row["main"] = i == main
        self.stats.processed += 1
        self.stats.rows += len(rows)
        self.stats.latency.add(time.monotonic() - frame.captured_at)
        return rows

    def _row(self, frame: CapturedFrame, face: dict[str, Any]) -> dict[str, Any]:
        row = self._base(frame)
        row["face_id"] = int(face["face_id"])
        row["box"] = [round(float(v), 2) for v in face["box"]]
        row["det_score"] = round(float(face["det_score"]), 5)
        prob = face.get("expr_prob")
        if prob is not None and len(self.classes) and np.isfinite(prob).all():
            row["label"] = self.classes[int(np.argmax(prob))]
            row.update({prob_column(c): float(p) for c, p in zip(self.classes, prob)})
        va = face.get("va")
        if self.has_va and va is not None and np.isfinite(va).all():
            row.update({name: float(v) for name, v in zip(VA_COLUMNS, va)})
        return row

    def _empty_row(self, frame: CapturedFrame) -> dict[str, Any]:
        return self._base(frame)

    def _base(self, frame: CapturedFrame) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(self.columns)
        row.update(frame_idx=int(frame.frame_idx), time_sec=round(float(frame.time_sec), 6),
                   wall_time=round(float(frame.wall_time), 6))
        return row


def _one_torch_thread() -> Any:
    """predict's setting, one torch thread (more threads than cores makes torch's small convolutions many times
    slower); only when torch is loaded already: the default model and detector run without it, and importing
    torch here would stall the first frames for seconds."""
    return torch_threads(1) if "torch" in sys.modules else contextlib.nullcontext()


def _area(box: list[float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])
