"""Clip samples: one sample per labelled clip, for clip-level training and evaluation.

Clip datasets (one expression label per clip: DFEW, FERV39k, MAFW, AFEW, CK+, RAVDESS,
CREMA-D, a study's own recordings) are stored like any other video: one feature row
per frame, every frame carrying the clip's label. A clip sample is built the way
dynamic-FER work builds its inputs (DFEW, FERV39k, MAFW: 16 frames per clip):

* ``ClipSpec.frames`` (default 16) positions are taken **uniformly over the whole
  clip**: position ``k`` is the centre frame of the ``k``-th of ``frames`` equal
  segments, ``floor((k + 0.5) * n / frames)``. A clip shorter than ``frames``
  repeats frames (an 8-frame clip gives each frame twice), so every clip of one
  frame or more gives exactly one sample; no window length has to fit the data.
* Positions whose frame has no face (no feature) are *masked*: zero features,
  ``mask`` False, as gaps inside windows (:mod:`affectseq.sequences.windows`).
* The target is the clip's label: the most frequent annotated ``expr`` over the
  clip's frames (all equal in a clip store), the mean ``va``, and per AU the
  majority of its annotated frames.

Centre sampling is deterministic, so training and evaluation (and ``predict`` on a
raw clip, :mod:`affectseq.predict.clip`) see the same frames of a clip.

A sample has the keys of a seq2one window sample (:mod:`affectseq.sequences.dataset`)
with ``W = frames`` and ``target_frame_idx = -1``, so :func:`collate_windows`, the
losses and the temporal model (seq2one: one output per sequence) are shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from affectseq.features.store import TASKS, FeatureStore, task_valid

DEFAULT_CLIP_FRAMES = 16  # the dynamic-FER convention (DFEW, FERV39k, MAFW baselines)


@dataclass(frozen=True)
class ClipSpec:
    """How a clip becomes one sample: ``frames`` positions sampled uniformly over it; ``tasks`` scored."""

    frames: int = DEFAULT_CLIP_FRAMES
    tasks: tuple[str, ...] = ("expr",)

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"clip frames must be >= 1, got {self.frames}")
        unknown = set(self.tasks) - set(TASKS)
        if unknown or not self.tasks:
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {self.tasks}")


def clip_positions(n_frames: int, frames: int = DEFAULT_CLIP_FRAMES) -> np.ndarray:
    """The ``frames`` sampled frame indices of a clip of ``n_frames`` (segment centres, int64, non-decreasing)."""
    if n_frames < 1:
        return np.zeros(0, dtype=np.int64)
    k = np.arange(frames, dtype=np.float64)
    return np.minimum(np.floor((k + 0.5) * n_frames / frames).astype(np.int64), n_frames - 1)


def clip_targets(labels: np.ndarray, tasks: Sequence[str]) -> dict[str, np.ndarray]:
    """The clip-level label of each of ``tasks`` from a clip's per-frame ``LABEL_DTYPE`` labels.

    ``expr``: the most frequent annotated class (ties: the smallest index), -1 when none;
    ``va``: the mean of annotated frames (NaN when none); ``au``: per AU the majority of
    its annotated frames (-1 where none). Tasks not in ``tasks`` are unannotated.
    """
    out = {"expr": np.int64(-1), "va": np.full(2, np.nan, np.float32),
           "au": np.full(labels["au"].shape[1], -1, np.int64)}
    if "expr" in tasks:
        expr = labels["expr"][labels["expr"] >= 0].astype(np.int64)
        if len(expr):
            out["expr"] = np.int64(np.bincount(expr).argmax())
    if "va" in tasks:
        va = labels["va"][task_valid(labels, "va")]
        if len(va):
            out["va"] = va.mean(axis=0).astype(np.float32)
    if "au" in tasks:
        au = labels["au"].astype(np.int64)
        annotated = (au >= 0).sum(axis=0)
        active = (au == 1).sum(axis=0)
        out["au"] = np.where(annotated > 0, (2 * active > annotated).astype(np.int64), -1)
    return out


class ClipDataset:
    """One sample per clip of ``video_ids`` (a map-style Dataset; see the module docstring).

    A clip whose labels hold none of ``spec.tasks``, or without a single face, has no
    sample (``skipped`` lists them): it can neither teach nor be scored. With ``split``,
    only the labels of the tasks whose split is ``split`` for that clip count (as
    :class:`~affectseq.sequences.dataset.WindowDataset`). The store must be complete
    (``allow_incomplete``: warn instead).
    """

    def __init__(self, store: FeatureStore, video_ids: Sequence[str], spec: ClipSpec, split: str | None = None,
                 allow_incomplete: bool = False):
        from affectseq.sequences.dataset import INCOMPLETE_HINT

        store.require_complete(allow_incomplete, hint=INCOMPLETE_HINT)
        self.store, self.spec = store, spec
        kept, tasks_of, skipped = [], [], []
        for vid in video_ids:
            tasks = tuple(t for t in spec.tasks if split is None or store.entries[vid].splits.get(t) == split)
            labels = store.labels(vid)
            labelled = any(task_valid(labels, t).any() for t in tasks)
            if labelled and labels["feature_valid"].any():
                kept.append(vid)
                tasks_of.append(tasks)
            else:
                skipped.append(vid)
        self.video_ids: tuple[str, ...] = tuple(kept)
        self.skipped: tuple[str, ...] = tuple(skipped)
        self._tasks = tuple(tasks_of)

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = int(i)
        if not 0 <= i < len(self):
            raise IndexError(f"clip index {i} out of range (0..{len(self) - 1})")
        vid = self.video_ids[i]
        n = self.store.n_frames(vid)
        positions = clip_positions(n, self.spec.frames)
        labels = self.store.labels(vid)
        mask = np.asarray(labels["feature_valid"][positions], dtype=bool)
        # Only the sampled rows are read (fancy indexing a memmap copies just those pages).
        sample_feats = np.asarray(self.store.features(vid)[positions], dtype=np.float16)
        sample_feats[~mask] = 0.0  # a row without a face is zero whatever the store holds
        sample: dict[str, Any] = {"features": sample_feats, "mask": mask, "video": i, "frame_idx": positions,
                                  "target_frame_idx": np.int64(-1)}
        sample.update(clip_targets(labels, self._tasks[i]))
        return sample

    def target_labels(self, task: str) -> np.ndarray:
        """The clip-level ``task`` label of every clip (for balancing and class weights)."""
        return np.stack([clip_targets(self.store.labels(v), self._tasks[i])[task]
                         for i, v in enumerate(self.video_ids)]) if len(self) else np.zeros(0)
