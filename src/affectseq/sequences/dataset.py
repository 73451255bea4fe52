"""Windows as named samples (a torch ``Dataset``), their collation and window-level balancing.

A sample is a dict of NumPy arrays (W = window length, D = feature_dim)::

    features  float16 (W, D)   zeros at gaps and padding (the store's dtype; collate makes float32)
    mask      bool (W,)        True where the row holds a real feature
    video     int              position of the video in ``WindowDataset.video_ids``
    frame_idx int64 (W,)       frame of each row (-1 for padding outside the video)
    target_frame_idx int64     seq2one: the predicted frame t; seq2seq: -1
    expr      int64  ()/(W,)   seq2one: label of frame t; seq2seq: per row
    va        float32 (2,)/(W, 2)
    au        int64 (13,)/(W, 13)

Unannotated labels use the canonical values (expr -1, va NaN, au -1); with
``split``, labels of a task whose split is another one for that video are
unannotated too. In seq2seq
mode a row without a feature also has its labels unannotated: a prediction is
only scored where there was a face (the "masked where labels or faces are
missing" rule), so losses simply ignore unannotated entries. In seq2one mode the
target frame itself needs no face: it is predicted from the frames before it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from affectseq.features.store import FeatureStore
from affectseq.sequences.windows import WindowIndex, WindowSpec

LABEL_FIELDS = ("expr", "va", "au")


INCOMPLETE_HINT = "or set allow_incomplete_store=true to train on the committed videos anyway"


class WindowDataset:
    """Random access to the windows of ``spec`` over some videos of a store (a map-style Dataset).

    The store must be one finished extraction (:meth:`FeatureStore.require_complete`):
    an interrupted or failed run, or a manifest that disagrees with the committed
    videos, is an ``InputError`` -- training would silently use fewer videos -- unless
    ``allow_incomplete`` (then a loud warning).
    """

    def __init__(self, store: FeatureStore, video_ids: Sequence[str], spec: WindowSpec, split: str | None = None,
                 allow_incomplete: bool = False):
        store.require_complete(allow_incomplete, hint=INCOMPLETE_HINT)
        self.store = store
        self.spec = spec
        video_tasks = None
        if split is not None:
            # Aff-Wild2 puts some videos in different splits for different tasks: a video
            # contributes only the labels of the tasks whose split this is (no leakage).
            video_tasks = [tuple(t for t in spec.tasks if store.entries[v].splits.get(t) == split)
                           for v in video_ids]
        self.index = WindowIndex(store, video_ids, spec, video_tasks)
        self.video_ids = self.index.video_ids
        self._masked_tasks = [tuple(t for t in spec.tasks if t not in tasks) for tasks in self.index.video_tasks]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.read(*self.index.locate_one(int(i)))

    def read(self, video: int, anchor: int) -> dict[str, Any]:
        """The sample of the window of ``video`` (position) with ``anchor`` (see module docstring)."""
        vid = self.video_ids[video]
        w = self.spec.length
        n = self.store.n_frames(vid)
        start, stop = self.index.frame_range(anchor)
        lo, hi = max(start, 0), min(stop, n)
        feats, labels = self.store.read_window(vid, lo, hi, dtype=np.float16)
        offset = lo - start  # rows of left padding (seq2one with pad_start)
        rows = slice(offset, offset + (hi - lo))

        sample_feats = np.zeros((w, self.store.feature_dim), dtype=np.float16)
        mask = np.zeros(w, dtype=bool)
        mask[rows] = labels["feature_valid"]
        sample_feats[rows] = feats
        if not mask[rows].all():
            sample_feats[~mask] = 0.0  # a gap row is zero whatever the store holds
        frame_idx = np.full(w, -1, dtype=np.int64)
        frame_idx[rows] = np.arange(lo, hi)
        sample: dict[str, Any] = {"features": sample_feats, "mask": mask, "video": video, "frame_idx": frame_idx}

        if self.spec.mode == "seq2one":
            target = self.store.labels(vid)[anchor]
            sample["target_frame_idx"] = np.int64(anchor)
            sample["expr"] = np.int64(target["expr"])
            sample["va"] = np.asarray(target["va"], dtype=np.float32)
            sample["au"] = np.asarray(target["au"], dtype=np.int64)
        else:
            sample["target_frame_idx"] = np.int64(-1)
            expr = np.full(w, -1, dtype=np.int64)
            va = np.full((w, 2), np.nan, dtype=np.float32)
            au = np.full((w, labels["au"].shape[1]), -1, dtype=np.int64)
            expr[rows], va[rows], au[rows] = labels["expr"], labels["va"], labels["au"]
            expr[~mask], va[~mask], au[~mask] = -1, np.nan, -1
            sample["expr"], sample["va"], sample["au"] = expr, va, au
        for task in self._masked_tasks[video]:
            sample[task] = np.full_like(sample[task], np.nan if task == "va" else -1)
        return sample

    def target_labels(self, task: str) -> np.ndarray:
        """seq2one: the ``task`` label of every window's target frame (for window-level balancing)."""
        if self.spec.mode != "seq2one":
            raise ValueError("window-level target labels are defined for seq2one windows only")
        videos, anchors = self.index.anchors()
        parts = []
        for v in np.unique(videos):
            labels = self.store.labels(self.video_ids[v])
            parts.append(np.asarray(labels[task][anchors[videos == v]]))
        return np.concatenate(parts) if parts else np.zeros(0)


def balanced_window_indices(
    dataset: WindowDataset, task: str, method: str, random_state: int | None = None
) -> np.ndarray:
    """Window indices kept by H6's balancing samplers applied to the targets of seq2one windows.

    ``method``: ``"va_downsample"`` (the paper's VA method), ``"expr_downsample"`` or ``"expr_oversample"``.
    """
    from affectseq.data import balance

    labels = dataset.target_labels(task)
    if method == "va_downsample" and task == "va":
        return balance.va_downsample(labels, random_state=random_state)
    if method == "expr_downsample" and task == "expr":
        return balance.expr_downsample(labels, random_state=random_state)
    if method == "expr_oversample" and task == "expr":
        return balance.expr_oversample(labels, random_state=random_state)
    raise ValueError(f"balancing {method!r} does not apply to task {task!r}")


def collate_windows(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into a batch of tensors (all windows have the same length W); features become float32."""
    import torch

    batch: dict[str, Any] = {}
    for key in samples[0]:
        batch[key] = torch.as_tensor(np.stack([np.asarray(s[key]) for s in samples]))
    batch["features"] = batch["features"].float()
    return batch
