"""Frame-training data: which FrameSets a ``--data PATH`` means, and the torch Dataset over one.

``--data`` may be any layout of the registry (:mod:`affectseq.data.registry`) whose faces
are cropped: a FER2013 or FER+ ``.npz`` (splits train/validation/test), a class-per-folder
image tree (``root/<class>/`` or ``root/<split>/<class>/``), or an ABAW-layout root with
crops (Aff-Wild2, or what ``data faces`` wrote from raw videos or clips). A split name of
``"auto"`` picks the dataset's usual validation/test split; when a set has no
validation split a seeded fraction of the training frames is held out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from affectseq.data.frames import FrameSet
from affectseq.data.splits import find_split, normalise_split
from affectseq.errors import InputError
from affectseq.features.encoders import EncoderSpec
from affectseq.features.preprocess import preprocess_faces


@dataclass
class FrameData:
    """The training, validation and (optional) test frames of one dataset, each a (FrameSet, indices) pair."""

    train: tuple[FrameSet, np.ndarray]
    val: tuple[FrameSet, np.ndarray]
    test: tuple[FrameSet, np.ndarray] | None
    framing: str  # crop framing of this dataset's images (see affectseq.features.encoders.FRAMINGS)
    grayscale_source: bool  # all images are gray (repeated to RGB)
    notes: list[str] = field(default_factory=list)


def _pick(available: list[str], wanted: str | None, role: str | None) -> str | None:
    if wanted is None:
        return None
    if wanted != "auto":
        if wanted in available:
            return wanted
        # "train"/"validation"/"test" also name ABAW's Train_Set/Validation_Set and similar spellings.
        match = [a for a in available if normalise_split(a) == normalise_split(wanted)]
        if len(match) != 1:
            raise InputError(wanted, f"no such split; available: {', '.join(available)}")
        return match[0]
    return find_split(available, role) if role else None


def _splits(path: Path, task: str) -> tuple[dict[str, Callable[[], FrameSet]], str, bool]:
    """``({split: loader}, framing, grayscale_source)`` for a dataset path (any registered layout)."""
    from affectseq.data.registry import dataset_has_crops, label_level, open_dataset

    dataset = open_dataset(path)
    if label_level(dataset) == "image":  # a still-image set (the registry's image surface)
        return ({s: (lambda s=s: dataset.frame_set(task, s)) for s in dataset.splits()}, dataset.framing,
                dataset.grayscale)
    if not dataset_has_crops(dataset):
        raise InputError(path, f"a {dataset.layout} dataset has no face crops yet: 'affectseq train frames' crops "
                               "them itself, or run 'affectseq data faces DATASET --out DIR' and train on DIR")
    if task != "multi":
        return {s: (lambda s=s: dataset.frame_set(task, s)) for s in dataset.splits(task)}, "abaw112", False
    # Multi-task: the union of every task's frames of a split, each frame with all its labels.
    common = set.intersection(*(set(dataset.splits(t)) for t in dataset.tasks))
    return {s: (lambda s=s: merge_task_sets([dataset.frame_set(t, s) for t in dataset.tasks]))
            for s in sorted(common)}, "abaw112", False


def merge_task_sets(sets: list[Any]) -> Any:
    """Union of per-task ABAW ``CropFrameSet``s on (video, frame_idx); missing labels become -1/NaN."""
    from affectseq.data.frames import CropFrameSet

    video_names = sorted({str(v) for fs in sets for v in fs.video_names})
    crop_dir = {str(v): str(d) for fs in sets for v, d in zip(fs.video_names, fs.crop_dirs)}
    code = {name: i for i, name in enumerate(video_names)}
    stride = 1 + max((int(fs.frame_idx.max()) for fs in sets if len(fs)), default=0)
    keys = [np.array([code[str(v)] for v in fs.video_names], np.int64)[fs.video_pos] * stride + fs.frame_idx
            for fs in sets]
    union, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    n = len(union)
    expr, va, au = np.full(n, -1, np.int64), np.full((n, 2), np.nan, np.float32), None
    expr_classes: tuple[str, ...] = ()
    start = 0
    for fs, k in zip(sets, keys):
        rows = inverse[start:start + len(k)]
        start += len(k)
        if fs.expr is not None:
            expr[rows], expr_classes = fs.expr, fs.expr_classes
        if fs.va is not None:
            va[rows] = fs.va
        if fs.au is not None:
            au = np.full((n, fs.au.shape[1]), -1, np.int8) if au is None else au
            au[rows] = fs.au
    has_expr = any(fs.expr is not None for fs in sets)
    return CropFrameSet(
        name="+".join(fs.name for fs in sets), crop_dirs=np.array([crop_dir[v] for v in video_names]),
        video_names=np.array(video_names), video_pos=(union // stride).astype(np.int32),
        frame_idx=union % stride, expr_classes=expr_classes, expr=expr if has_expr else None,
        va=va if any(fs.va is not None for fs in sets) else None, au=au)


def _limit(indices: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or limit >= len(indices):
        return indices
    return np.sort(rng.choice(indices, size=limit, replace=False))


def resolve_frame_data(
    data: str | os.PathLike[str], task: str, *, train_split: str = "train", val_split: str | None = "auto",
    test_split: str | None = "auto", val_fraction: float = 0.1, seed: int = 0,
    limit_train: int | None = None, limit_val: int | None = None, limit_test: int | None = None,
) -> FrameData:
    """Load the frame sets for training; ``limit_*`` take seeded random subsets (reduced-size runs)."""
    path = Path(data)
    if not path.exists():
        raise InputError(path, "dataset not found")
    loaders, framing, gray = _splits(path, task)
    available = sorted(loaders)
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    train_name = _pick(available, train_split, "train")
    if train_name is None:
        raise InputError(path, f"no training split (available: {', '.join(available)})")
    train_set = loaders[train_name]()
    train_idx = np.arange(len(train_set))
    val_name = _pick([a for a in available if a != train_name], val_split, "validation")
    if val_name is None:
        perm = rng.permutation(len(train_set))
        n_val = max(1, int(round(val_fraction * len(train_set))))
        val = (train_set, np.sort(perm[:n_val]))
        train_idx = np.sort(perm[n_val:])
        notes.append(f"no validation split: held out {n_val} random training frames ({val_fraction:.0%})")
    else:
        val_set = loaders[val_name]()
        val = (val_set, np.arange(len(val_set)))
    test_name = _pick([a for a in available if a not in (train_name, val_name)], test_split, "test")
    test = None
    if test_name is not None:
        test_set = loaders[test_name]()
        test = (test_set, _limit(np.arange(len(test_set)), limit_test, rng))
    train = (train_set, _limit(train_idx, limit_train, rng))
    val = (val[0], _limit(val[1], limit_val, rng))
    return FrameData(train=train, val=val, test=test, framing=framing, grayscale_source=gray, notes=notes)


def load_frame_split(data: str | os.PathLike[str], task: str, split: str) -> tuple[FrameSet, str]:
    """One split of a dataset, ``(frame_set, framing)``, for scoring a trained model on it.

    ``split`` is a split name of the dataset or a common alias (``test``, ``validation``,
    ``PrivateTest``, ``Validation_Set``...).
    """
    path = Path(data)
    if not path.exists():
        raise InputError(path, "dataset not found")
    loaders, framing, _ = _splits(path, task)
    name = _pick(sorted(loaders), split, None)
    assert name is not None  # _pick returns None only for split=None
    return loaders[name](), framing


def frame_ids(frame_set: FrameSet, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(video_id str, frame_idx int64)`` per item: video sets give their own, image sets their set name."""
    video_ids = getattr(frame_set, "video_ids", None)
    frame_idx = getattr(frame_set, "frame_idx", None)
    if video_ids is not None and frame_idx is not None:
        return np.asarray(video_ids)[indices].astype(str), np.asarray(frame_idx)[indices].astype(np.int64)
    return np.full(len(indices), frame_set.name, dtype=object).astype(str), np.asarray(indices, dtype=np.int64)


class FrameDataset(torch.utils.data.Dataset):
    """Batches ``(x float (B, C, S, S), expr int64 (B,), va float32 (B, 2), au float32 (B, n_aus))``.

    With ``soft_targets`` (training on a set with ``expr_dist``, e.g. FER+ votes) ``expr``
    is the float32 (B, C) target distribution instead; an all-zero row is unannotated.

    ``__getitems__`` fetches a whole batch (torch's batched-fetch protocol) so
    equally sized images (FER2013) are preprocessed in one call; use it with
    :func:`collate_batch`. Missing label kinds are filled with their
    "unannotated" value (-1 / NaN) so every batch has the same structure.
    """

    def __init__(self, frame_set: FrameSet, indices: np.ndarray, spec: EncoderSpec, num_aus: int = 13,
                 framing: str | None = None, soft_targets: bool = False) -> None:
        if soft_targets and getattr(frame_set, "expr_dist", None) is None:
            raise InputError(frame_set.name, "soft EXPR targets need a dataset with vote distributions (FER+)")
        self.frame_set = frame_set
        self.soft_targets = soft_targets
        self.indices = np.asarray(indices, dtype=np.int64)
        self.spec = spec
        self.num_aus = num_aus
        self.framing = framing  # of the images, when it may differ from the model's (cross-dataset scoring)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, ...]:
        return self.__getitems__([k])

    def __getitems__(self, ks: list[int]) -> tuple[torch.Tensor, ...]:
        idx = self.indices[np.asarray(ks, dtype=np.int64)]
        images = [self.frame_set.load_image(int(i)) for i in idx]
        if all(im.shape == images[0].shape for im in images):
            x = preprocess_faces(self.spec, np.stack(images), self.framing)
        else:
            x = torch.cat([preprocess_faces(self.spec, im[None], self.framing) for im in images])
        fs: Any = self.frame_set
        n = len(idx)
        if self.soft_targets:
            expr = torch.from_numpy(fs.expr_dist[idx])
        elif fs.expr is not None:
            expr = torch.from_numpy(fs.expr[idx])
        else:
            expr = torch.full((n,), -1, dtype=torch.int64)
        va = torch.from_numpy(fs.va[idx].astype(np.float32)) if fs.va is not None else torch.full((n, 2), float("nan"))
        au = (torch.from_numpy(fs.au[idx].astype(np.float32)) if fs.au is not None
              else torch.full((n, self.num_aus), -1.0))
        return x, expr, va, au


def collate_batch(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The DataLoader ``collate_fn`` for :class:`FrameDataset` (batches are already built)."""
    return batch


def tasks_in(frame_set: FrameSet, task: str) -> tuple[str, ...]:
    """The model tasks for ``--task`` given the labels the training set carries."""
    has = {"expr": frame_set.expr is not None and bool((frame_set.expr >= 0).any()),
           "va": frame_set.va is not None and bool((~np.isnan(frame_set.va)).any()),
           "au": frame_set.au is not None and bool((frame_set.au >= 0).any())}
    if task in ("expr", "va"):
        if not has[task]:
            raise InputError(frame_set.name, f"training set has no {task.upper()} labels")
        return (task,)
    tasks = tuple(t for t in ("expr", "va", "au") if has[t])
    if not tasks:
        raise InputError(frame_set.name, "training set has no labels")
    return tasks

