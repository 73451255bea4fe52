"""Dataset statistics behind ``affectseq data inspect``: layout, and per task and split the counts users check first.

:func:`inspect_dataset` detects the layout through the one registry
(:mod:`affectseq.data.registry`: ABAW 2020/3/6 trees, FER2013/FER+ npz, class-per-folder
image trees, video + per-frame CSV folders, clip datasets, and any registered layout) and
returns one JSON-ready dict::

    {"layout": "abaw6", "root": "...", "label_level": "frame",
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
a frame with a face. Clip datasets (``label_level`` ``"clip"``) count each clip as a video.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from affectseq.data.registry import detect_layout as _detect, label_level, open_dataset
from affectseq.data.stats import (MAX_LISTED_WARNINGS, QUADRANTS, au_stats, expr_stats, split_stats, va_stats,
                                  warnings_report)

__all__ = ["MAX_LISTED_WARNINGS", "QUADRANTS", "au_stats", "detect_layout", "expr_stats", "inspect_dataset",
           "split_stats", "va_stats", "video_dataset_report"]


def detect_layout(path: str | os.PathLike[str]) -> str:
    """The name of the dataset layout at ``path`` (``"fer2013"``, ``"abaw6"``, ``"clip_folders"``, ...)."""
    return _detect(path)[1]


def inspect_dataset(path: str | os.PathLike[str], strict: bool = False, layout: str | None = None,
                    **options: Any) -> dict[str, Any]:
    """Statistics of the dataset at ``path`` (see the module docstring for the shape).

    ``layout`` forces a registered layout instead of detecting one; ``options`` are the layout's own
    (``fold``, ``fps``).
    """
    path = Path(path)
    dataset = open_dataset(path, layout=layout, strict=strict, **options)
    report = dataset.inspect() if hasattr(dataset, "inspect") else video_dataset_report(dataset)
    return {"layout": dataset.layout, "root": str(path), "label_level": label_level(dataset), **report}


def video_dataset_report(ds: Any) -> dict[str, Any]:
    """The ``tasks`` and ``warnings`` of an inspect report of a video dataset (any video layout)."""
    tasks: dict[str, dict[str, Any]] = {}
    for task in ds.tasks:
        tasks[task] = {}
        for split in ds.splits(task):
            tasks[task][split] = split_stats(task, ds.videos(task, split), getattr(ds, "expr_classes", ()))
    report: dict[str, Any] = {"tasks": tasks, "warnings": warnings_report(ds.warnings, ds.n_problems)}
    notes = list(getattr(ds, "notes", ()))
    if notes:
        report["notes"] = notes
    return report
