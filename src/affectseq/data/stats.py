"""Per-split label statistics of a dataset (``affectseq data inspect``): counts, class histograms, VA, AU.

Pure functions over label arrays and :class:`~affectseq.data.abaw.AnnotatedVideo` lists, shared by
the inspect report of every layout (video datasets in :mod:`affectseq.data.inspect`, image sets in
:mod:`affectseq.data.image_sets`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

MAX_LISTED_WARNINGS = 50
QUADRANTS: tuple[str, ...] = ("V+A+", "V-A+", "V-A-", "V+A-")


def warnings_report(warnings: Sequence[Any], count: int) -> dict[str, Any]:
    """The report's ``warnings`` entry: the count and up to :data:`MAX_LISTED_WARNINGS` lines."""
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


def image_split_stats(expr: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Counts of an image split (each image a frame with a face) and its class histogram."""
    n = int(len(expr))
    stats = {"videos": 0, "frames": n, "annotated_frames": int((expr >= 0).sum()), "frames_without_face": 0,
             "annotated_frames_with_face": int((expr >= 0).sum())}
    stats.update(expr_stats(expr, classes))
    return stats
