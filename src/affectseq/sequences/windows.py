"""Windows over a feature store: which windows exist, and how one is read as a named sample.

Two modes (``WindowSpec.mode``):

* ``"seq2one"`` (the paper): the window ``[t - W, t)`` of W frames predicts the
  label of frame ``t``, the frame right after it. The *anchor* is ``t``. A window
  exists when frame ``t`` is annotated for one of the tasks and the window holds
  at least one frame with a feature. Frames ``t < W`` have no full window: they are
  skipped (the paper), or predicted from a left-padded window with ``pad_start``.
* ``"seq2seq"``: the window ``[s, s + W)`` predicts every one of its frames; the
  anchor is ``s``; consecutive windows start ``stride`` frames apart and the last
  one reaches the end of the video (padded past it). A window exists when one of
  its frames has a feature and a label.

Windows never cross a video boundary. Frames without a feature inside a window
(no face, or a crop that failed to decode) are *gaps*: their feature rows are
zeros and ``mask`` is False there; they are never dropped, so time stays regular.

The index is kept as runs of consecutive valid anchors (one row per run, not per
window), so its memory grows with the number of gaps, not with the number of
frames: an Aff-Wild2-size store (3M frames) indexes in a few kilobytes when
annotation is continuous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from affectseq.features.store import TASKS, FeatureStore, task_valid

Mode = Literal["seq2one", "seq2seq"]


@dataclass(frozen=True)
class WindowSpec:
    """How windows are cut: mode, length W (frames), anchor stride, tasks whose labels count."""

    mode: Mode = "seq2one"
    length: int = 100
    stride: int | None = None  # None: 1 for seq2one (every frame is a target), W for seq2seq (no overlap)
    tasks: tuple[str, ...] = ("expr",)
    pad_start: bool = False  # seq2one only: frames t < W get a left-padded window instead of none

    def __post_init__(self) -> None:
        if self.length < 1:
            raise ValueError(f"window length must be >= 1, got {self.length}")
        if self.stride is not None and self.stride < 1:
            raise ValueError(f"window stride must be >= 1, got {self.stride}")
        unknown = set(self.tasks) - set(TASKS)
        if unknown or not self.tasks:
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {self.tasks}")

    @property
    def step(self) -> int:
        """Frames between consecutive anchors."""
        if self.stride is not None:
            return self.stride
        return 1 if self.mode == "seq2one" else self.length


def _valid_anchors(spec: WindowSpec, labels: np.ndarray, tasks: Sequence[str]) -> tuple[int, np.ndarray]:
    """(first anchor, bool per candidate anchor ``first + k * step``) for one video's labels."""
    n = labels.shape[0]
    w, step = spec.length, spec.step
    has_feature = labels["feature_valid"].astype(bool)
    labelled = np.zeros(n, dtype=bool)
    for task in tasks:
        labelled |= task_valid(labels, task)
    # Feature counts over any frame range via one cumulative sum.
    csum = np.concatenate([[0], np.cumsum(has_feature, dtype=np.int64)])
    if spec.mode == "seq2one":
        first = 1 if spec.pad_start else w
        targets = np.arange(first, n, step)
        starts = np.maximum(targets - w, 0)
        valid = labelled[targets] & (csum[targets] - csum[starts] > 0)
        return first, valid
    n_windows = 1 if n <= w else -(-(n - w) // step) + 1
    starts = np.arange(n_windows) * step
    stops = np.minimum(starts + w, n)
    useful = np.concatenate([[0], np.cumsum(has_feature & labelled, dtype=np.int64)])
    return 0, useful[stops] - useful[starts] > 0


def _runs(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of each run of True in ``valid``."""
    padded = np.concatenate([[False], valid, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[0::2], edges[1::2] - edges[0::2]


class WindowIndex:
    """All windows of ``spec`` over ``video_ids`` of ``store``, addressable by a flat index.

    ``video_tasks`` (one tuple per video, default ``spec.tasks`` for all) names the
    tasks whose labels make a window of that video valid.
    """

    def __init__(self, store: FeatureStore, video_ids: Sequence[str], spec: WindowSpec,
                 video_tasks: Sequence[Sequence[str]] | None = None):
        self.store = store
        self.video_ids: tuple[str, ...] = tuple(video_ids)
        self.spec = spec
        self.video_tasks: tuple[tuple[str, ...], ...] = (
            tuple(tuple(t) for t in video_tasks) if video_tasks is not None
            else tuple(spec.tasks for _ in self.video_ids)
        )
        run_video, run_k0, run_len, firsts = [], [], [], []
        for v, vid in enumerate(self.video_ids):
            first, valid = _valid_anchors(spec, store.labels(vid), self.video_tasks[v])
            firsts.append(first)
            k0, length = _runs(valid)
            run_video.append(np.full(len(k0), v, dtype=np.int32))
            run_k0.append(k0)
            run_len.append(length)
        self._run_video = np.concatenate(run_video) if run_video else np.zeros(0, np.int32)
        self._run_k0 = np.concatenate(run_k0).astype(np.int64) if run_k0 else np.zeros(0, np.int64)
        self._run_len = np.concatenate(run_len).astype(np.int64) if run_len else np.zeros(0, np.int64)
        self._run_end = np.cumsum(self._run_len)
        self._first = np.asarray(firsts, dtype=np.int64)

    def __len__(self) -> int:
        return int(self._run_end[-1]) if len(self._run_end) else 0

    def locate(self, i: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(video position in ``video_ids``, anchor frame_idx) of window(s) ``i``."""
        i = np.asarray(i, dtype=np.int64)
        if np.any(i < 0) or np.any(i >= len(self)):
            raise IndexError(f"window index out of range (0..{len(self) - 1})")
        run = np.searchsorted(self._run_end, i, side="right")
        k = self._run_k0[run] + (i - (self._run_end[run] - self._run_len[run]))
        video = self._run_video[run]
        return video, self._first[video] + k * self.spec.step

    def locate_one(self, i: int) -> tuple[int, int]:
        """Scalar fast path of :meth:`locate` (one window per sample read)."""
        if not 0 <= i < len(self):
            raise IndexError(f"window index {i} out of range (0..{len(self) - 1})")
        run = int(self._run_end.searchsorted(i, side="right"))
        k = int(self._run_k0[run]) + i - (int(self._run_end[run]) - int(self._run_len[run]))
        video = int(self._run_video[run])
        return video, int(self._first[video]) + k * self.spec.step

    def frame_range(self, anchor: int) -> tuple[int, int]:
        """[start, stop) frame range of the window with ``anchor`` (may reach outside the video)."""
        w = self.spec.length
        return (anchor - w, anchor) if self.spec.mode == "seq2one" else (anchor, anchor + w)

    def anchors(self) -> tuple[np.ndarray, np.ndarray]:
        """(video position, anchor) of every window, materialised (for evaluation and balancing)."""
        return self.locate(np.arange(len(self)))

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the index itself (grows with runs, not frames)."""
        return sum(a.nbytes for a in (self._run_video, self._run_k0, self._run_len, self._run_end, self._first))
