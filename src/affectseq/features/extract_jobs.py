"""What extraction has to do: one job per video (its crops, labels per task), and the frames to decode.

An ABAW dataset lists a video once per task it is annotated for (EXPR, VA, AU),
each with its own split. :func:`plan_videos` merges them: one :class:`VideoJob`
per ``video_id`` with the union of face crops and every task's labels, so the
frame CNN runs once per frame whatever the number of tasks.

:class:`CropFrames` is the map-style dataset DataLoader workers decode from: item
``i`` is the ``i``-th face crop of the jobs in order, so batches arrive video by
video and the writer holds at most a couple of videos in memory. Its index is one
cumulative count per video (not one entry per frame), so it stays small for
Aff-Wild2's ~3M frames. Two kinds of missing features are told apart:

* **no face**: the dataset lists no crop for the frame, or the crop file is gone
  (``missing=True``): the frame is masked like any frame without a face;
* **read failure**: the crop file exists but cannot be read or decoded (corrupt
  bytes, permissions, an I/O error) (``error`` set): extraction fails the whole video,
  which is not committed and is retried by the next run -- a transient NFS error or a
  half-copied dataset must not be frozen into the store as "no face".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from affectseq.data.splits import normalise_split
from affectseq.features.store import make_labels

@dataclass
class VideoJob:
    """One video to extract: its face mask, its annotated sources (one per task) and their splits."""

    video_id: str
    n_frames: int
    has_face: np.ndarray  # (n_frames,) bool: a crop exists
    sources: tuple[Any, ...] = field(repr=False)  # AnnotatedVideo of each task (crop_path, labels)
    splits: dict[str, str] = field(default_factory=dict)  # store task ("expr"/"va"/"au") -> split

    def crop_path(self, frame_idx: int) -> str | None:
        for source in self.sources:
            path = source.crop_path(frame_idx) if frame_idx < source.n_frames else None
            if path is not None:
                return str(path)
        return None

    def labels(self, feature_valid: np.ndarray) -> np.ndarray:
        """The store's label records: every task's labels padded to ``n_frames`` (unannotated beyond)."""
        arrays: dict[str, np.ndarray] = {}
        for source in self.sources:
            task = source.task.lower()
            n = min(source.n_frames, self.n_frames)
            if task == "expr":
                full = np.full(self.n_frames, -1, np.int64)
            elif task == "va":
                full = np.full((self.n_frames, 2), np.nan, np.float32)
            else:
                full = np.full((self.n_frames, source.labels.shape[1]), -1, np.int8)
            full[:n] = source.labels[:n]
            arrays[task] = full
        return make_labels(self.n_frames, feature_valid=feature_valid, has_face=self.has_face, **arrays)


def plan_videos(dataset: Any) -> list[VideoJob]:
    """One job per video id over every task and split of an ``AbawDataset``-like object, sorted by id."""
    merged: dict[str, list[Any]] = {}
    splits: dict[str, dict[str, str]] = {}
    for task in dataset.tasks:
        for split in dataset.splits(task):
            for video in dataset.videos(task, split):
                merged.setdefault(video.video_id, []).append(video)
                splits.setdefault(video.video_id, {})[task.lower()] = normalise_split(split)
    jobs = []
    for video_id in sorted(merged):
        sources = tuple(merged[video_id])
        n_frames = max(s.n_frames for s in sources)
        has_face = np.zeros(n_frames, bool)
        for s in sources:
            has_face[: s.n_frames] |= np.asarray(s.has_face, bool)
        jobs.append(VideoJob(video_id, n_frames, has_face, sources, splits[video_id]))
    return jobs


class CropFrames:
    """Decoded, preprocessed face crops of ``jobs``, in order (a map-style torch Dataset)."""

    def __init__(self, jobs: Iterable[VideoJob], spec: Any, framing: str | None = "abaw112"):
        self.jobs = list(jobs)
        self.spec = spec
        self.framing = framing
        counts = np.array([int(j.has_face.sum()) for j in self.jobs], dtype=np.int64)
        self.ends = np.cumsum(counts)
        self._cached: tuple[int, np.ndarray] | None = None  # (job, its face frame indices): access is sequential

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def frames_of(self, job_pos: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != job_pos:
            self._cached = (job_pos, np.flatnonzero(self.jobs[job_pos].has_face))
        return self._cached[1]

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        from affectseq.data.frames import read_image_rgb
        from affectseq.features.preprocess import preprocess_faces

        job_pos = int(np.searchsorted(self.ends, i, side="right"))
        start = int(self.ends[job_pos - 1]) if job_pos else 0
        frame_idx = int(self.frames_of(job_pos)[i - start])
        path = self.jobs[job_pos].crop_path(frame_idx)
        x, missing, error = None, False, ""
        if path is None or not os.path.lexists(path):
            missing = True  # no crop: the frame has no face (not an error)
        else:
            try:
                x = preprocess_faces(self.spec, read_image_rgb(path), framing=self.framing)[0]
            except Exception as err:  # noqa: BLE001 -- any read failure fails the video (see module docstring)
                error = str(err) if str(path) in str(err) else f"{path}: {err}"
        if x is None:
            size = self.spec.input_size
            x = torch.zeros(self.spec.in_chans, size, size)
        return {"job": job_pos, "frame_idx": frame_idx, "x": x, "ok": not (missing or error), "missing": missing,
                "error": error}


def worker_init(_: int) -> None:
    """DataLoader worker setup: one thread each, so N workers use N cores, not N x cores."""
    import torch

    torch.set_num_threads(1)
