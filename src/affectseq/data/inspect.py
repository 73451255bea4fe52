"""Dataset statistics behind ``affectseq data inspect``: layout, and per task and split the counts users check first.

:func:`inspect_dataset` auto-detects the layout (ABAW 2020/3/6 trees, FER2013
npz, class-per-folder image trees, video + per-frame CSV folders) and returns
one JSON-ready dict::

    {"layout": "abaw6", "root": "...",
     "tasks": {"EXPR": {"Train_Set": {"videos": 3, "frames": 27, "annotated_frames": 22,
                                      "frames_without_face": 10, "class_counts": {...},
                                      "class_percent": {...}, "imbalance_ratio": 9.0}, ...},
               "VA": {"Train_Set": {..., "va": {"valence": {"mean": .., "std": ..}, ...},
                                    "quadrant_share": {"V+A+": .., ...}}},
               "AU": {"Train_Set": {..., "au_positive_rate": {...}}}},
     "warnings": {"count": 2, "listed": ["file:line: problem", ...]}}

``frames`` counts data rows of the annotation files (one per video frame),
``annotated_frames`` rows with a valid label (AU: at least one valid AU), and
``frames_without_face`` rows with no face crop. Image sets count each image as
a frame with a face.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from affectseq.errors import InputError

MAX_LISTED_WARNINGS = 50
QUADRANTS: tuple[str, ...] = ("V+A+", "V-A+", "V-A-", "V+A-")


def detect_layout(path: str | os.PathLike[str]) -> str:
    """``"fer2013"``, ``"ferplus"``, ``"abaw2020"``/``"abaw3"``/``"abaw6"``, ``"image_folder"`` or ``"video_csv"``."""
    from affectseq.data import ferplus, images, video_csv
    from affectseq.data.abaw_layout import scan_abaw_root

    path = Path(path)
    if not path.exists():
        raise InputError(path, "not found")
    if path.is_file():
        if images.is_fer2013_npz(path):
            return "fer2013"
        if ferplus.is_ferplus_npz(path):
            return "ferplus"
        raise InputError(path, "not a dataset (expected a FER2013/FER+ .npz or a dataset folder)")
    tree = scan_abaw_root(path)
    if tree.layout is not None:
        return tree.layout
    if images.image_folder_splits(path):
        return "image_folder"
    if video_csv.find_pairs(path):
        return "video_csv"
    raise InputError(path, "unknown dataset layout: no ABAW annotation folders, class-per-folder images, "
                           "or video + per-frame CSV pairs")


def inspect_dataset(path: str | os.PathLike[str], strict: bool = False) -> dict[str, Any]:
    """Statistics of the dataset at ``path`` (see the module docstring for the shape)."""
    path = Path(path)
    layout = detect_layout(path)
    if layout == "fer2013":
        report = _inspect_fer2013(path)
    elif layout == "ferplus":
        report = _inspect_ferplus(path)
    elif layout == "image_folder":
        report = _inspect_image_folder(path)
    elif layout == "video_csv":
        from affectseq.data.video_csv import VideoCsvDataset

        report = _inspect_video_dataset(VideoCsvDataset(path, strict=strict))
    else:
        from affectseq.data.abaw import AbawDataset

        report = _inspect_video_dataset(AbawDataset(path, strict=strict))
    return {"layout": layout, "root": str(path), **report}


def _inspect_video_dataset(ds) -> dict[str, Any]:
    tasks: dict[str, dict[str, Any]] = {}
    for task in ds.tasks:
        tasks[task] = {}
        for split in ds.splits(task):
            tasks[task][split] = split_stats(task, ds.videos(task, split), getattr(ds, "expr_classes", ()))
    return {"tasks": tasks, "warnings": _warnings(ds.warnings, ds.n_problems)}


def _warnings(warnings: Sequence[Any], count: int) -> dict[str, Any]:
    return {"count": int(count), "listed": [str(w) for w in warnings[:MAX_LISTED_WARNINGS]]}


def split_stats(task: str, videos: Sequence[Any], expr_classes: Sequence[str] = ()) -> dict[str, Any]:
    """Counts and label statistics of one task and split from its annotated videos."""
    n_frames = sum(v.n_frames for v in videos)
    stats: dict[str, Any] = {
        "videos": len(videos),
        "frames": int(n_frames),
        "annotated_frames": int(sum(int(v.annotated.sum()) for v in videos)),
        "frames_without_face": int(sum(int((~v.has_face).sum()) for v in videos)),
        "annotated_frames_with_face": int(sum(int((v.annotated & v.has_face).sum()) for v in videos)),
        "videos_with_raw_video": sum(v.source_video is not None for v in videos),
    }
    if task == "EXPR":
        y = np.concatenate([v.labels[v.label_valid] for v in videos]) if videos else np.zeros(0, np.int64)
        stats.update(expr_stats(y, expr_classes))
    elif task == "VA":
        va = np.concatenate([v.labels[v.label_valid] for v in videos]) if videos else np.zeros((0, 2), np.float32)
        stats.update(va_stats(va))
    elif task == "AU":
        au = np.concatenate([v.labels for v in videos]) if videos else np.zeros((0, 13), np.int8)
        stats.update(au_stats(au))
    return stats


def expr_stats(y: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Class histogram (counts, percent) and imbalance ratio (largest / smallest class) of valid labels ``y``."""
    counts = np.bincount(y[y >= 0], minlength=len(classes))[: len(classes)] if len(classes) else np.zeros(0, int)
    total = int(counts.sum())
    nonzero = counts[counts > 0]
    return {
        "class_counts": {c: int(n) for c, n in zip(classes, counts)},
        "class_percent": {c: (round(100.0 * n / total, 2) if total else 0.0) for c, n in zip(classes, counts)},
        # None when a class has no frame at all (the ratio is unbounded); see empty_classes.
        "imbalance_ratio": (round(float(counts.max() / counts.min()), 3) if total and counts.min() > 0 else None),
        "imbalance_ratio_nonempty": round(float(nonzero.max() / nonzero.min()), 3) if nonzero.size else None,
        "empty_classes": [c for c, n in zip(classes, counts) if n == 0],
    }


def va_stats(va: np.ndarray) -> dict[str, Any]:
    """Mean/std/min/max per dimension and the share of frames per valence/arousal quadrant (0 counts as +)."""
    out: dict[str, Any] = {"va": {}}
    for j, dim in enumerate(("valence", "arousal")):
        col = va[:, j].astype(np.float64)
        out["va"][dim] = ({"mean": round(float(col.mean()), 4), "std": round(float(col.std()), 4),
                           "min": round(float(col.min()), 4), "max": round(float(col.max()), 4)}
                          if col.size else {"mean": None, "std": None, "min": None, "max": None})
    v_pos, a_pos = va[:, 0] >= 0, va[:, 1] >= 0
    masks = (v_pos & a_pos, ~v_pos & a_pos, ~v_pos & ~a_pos, v_pos & ~a_pos)
    n = len(va)
    out["quadrant_share"] = {q: (round(float(m.sum()) / n, 4) if n else 0.0) for q, m in zip(QUADRANTS, masks)}
    return out


def au_stats(au: np.ndarray) -> dict[str, Any]:
    """Per AU: frames annotated and the share of those that are positive."""
    from affectseq.labels import AU_NAMES

    annotated = (au >= 0).sum(axis=0)
    positive = (au == 1).sum(axis=0)
    return {
        "au_annotated_frames": {name: int(annotated[k]) for k, name in enumerate(AU_NAMES)},
        "au_positive_rate": {name: (round(float(positive[k] / annotated[k]), 4) if annotated[k] else None)
                             for k, name in enumerate(AU_NAMES)},
    }


def _image_split_stats(expr: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    n = int(len(expr))
    stats = {"videos": 0, "frames": n, "annotated_frames": int((expr >= 0).sum()), "frames_without_face": 0,
             "annotated_frames_with_face": int((expr >= 0).sum())}
    stats.update(expr_stats(expr, classes))
    return stats


def _inspect_fer2013(path: Path) -> dict[str, Any]:
    from affectseq.data.images import FER2013_SPLITS, fer2013_label_arrays
    from affectseq.labels import EXPR_CLASSES_7

    y, split = fer2013_label_arrays(path)
    splits = {name: _image_split_stats(y[split == code], EXPR_CLASSES_7) for name, code in FER2013_SPLITS.items()}
    return {"tasks": {"EXPR": splits}, "warnings": _warnings([], 0)}


def _inspect_ferplus(path: Path) -> dict[str, Any]:
    """FER+: majority-vote class statistics per split, plus how many images unknown/NF won and vote agreement."""
    from affectseq.data.ferplus import FERPLUS_SPLITS, majority_labels, read_ferplus_votes
    from affectseq.labels import EXPR_CLASSES_FERPLUS

    votes, split = read_ferplus_votes(path)
    majority = majority_labels(votes)
    splits: dict[str, Any] = {}
    for name, code in FERPLUS_SPLITS.items():
        rows = split == code
        stats = _image_split_stats(majority[rows], EXPR_CLASSES_FERPLUS)
        stats["unknown_or_nf_majority"] = int((majority[rows] < 0).sum())
        # Share of an image's votes that went to its majority class: how much the 10 taggers agreed.
        top_share = votes[rows].max(axis=1) / np.maximum(votes[rows].sum(axis=1), 1)
        stats["mean_majority_vote_share"] = round(float(top_share.mean()), 4) if rows.any() else None
        splits[name] = stats
    return {"tasks": {"EXPR": splits}, "warnings": _warnings([], 0)}


def _inspect_image_folder(path: Path) -> dict[str, Any]:
    from affectseq.data.images import image_folder_splits, scan_image_folder

    splits: dict[str, Any] = {}
    warnings: list[str] = []
    for name, folder in image_folder_splits(path).items():
        scan = scan_image_folder(folder, num_classes=8)
        stats = _image_split_stats(scan.frame_set.expr, scan.frame_set.expr_classes)
        stats["dropped_images"] = scan.dropped
        splits[name] = stats
        warnings.extend(scan.warnings)
    return {"tasks": {"EXPR": splits}, "warnings": _warnings(warnings, len(warnings))}
