"""Reading a run's ``val_predictions.npz`` (the run-directory contract) into one checked object."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectseq import labels as L
from affectseq.errors import InputError
from affectseq.utils.rundir import predictions_file

PREDICTIONS_FILE = predictions_file("validation")


@dataclass(frozen=True)
class Predictions:
    """Per-frame validation predictions of one run; task fields are ``None`` when the run lacks the task.

    ``expr_true`` int64 (N,) with -1 unannotated, ``expr_prob`` float (N, C);
    ``va_true`` float (N, 2) with NaN unannotated, ``va_pred`` float (N, 2);
    ``au_true`` int8 (N, 13) with -1, ``au_prob`` float (N, 13).
    """

    video_id: np.ndarray
    frame_idx: np.ndarray
    expr_true: np.ndarray | None = None
    expr_prob: np.ndarray | None = None
    expr_classes: tuple[str, ...] = ()
    va_true: np.ndarray | None = None
    va_pred: np.ndarray | None = None
    au_true: np.ndarray | None = None
    au_prob: np.ndarray | None = None
    # "clip": the data has one label per clip (video_id); rows may be frames or already one per clip.
    label_level: str = "frame"

    def __len__(self) -> int:
        return int(self.frame_idx.shape[0])

    @property
    def tasks(self) -> tuple[str, ...]:
        """Tasks present, in the order expr, va, au."""
        present = {"expr": self.expr_true, "va": self.va_true, "au": self.au_true}
        return tuple(name for name, value in present.items() if value is not None)

    @property
    def num_classes(self) -> int:
        """Number of expression classes (from ``expr_classes``, else the width of ``expr_prob``)."""
        if self.expr_classes:
            return len(self.expr_classes)
        return int(self.expr_prob.shape[1]) if self.expr_prob is not None else 0

    @property
    def class_names(self) -> tuple[str, ...]:
        """Expression class names (canonical names when the file did not store them)."""
        if self.expr_classes:
            return self.expr_classes
        n = self.num_classes
        return L.expr_classes(n) if n in (7, 8) else tuple(str(i) for i in range(n))

    @property
    def expr_pred(self) -> np.ndarray | None:
        """Predicted class per frame (argmax of ``expr_prob``)."""
        return None if self.expr_prob is None else np.argmax(self.expr_prob, axis=1).astype(np.int64)

    def subset(self, keep: np.ndarray) -> "Predictions":
        """The frames selected by a boolean mask or index array, every field sliced alike."""
        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[keep]

        return Predictions(
            video_id=self.video_id[keep], frame_idx=self.frame_idx[keep],
            expr_true=cut(self.expr_true), expr_prob=cut(self.expr_prob), expr_classes=self.expr_classes,
            va_true=cut(self.va_true), va_pred=cut(self.va_pred),
            au_true=cut(self.au_true), au_prob=cut(self.au_prob), label_level=self.label_level,
        )


def _pair(data: dict[str, np.ndarray], path: Path, true_key: str, pred_key: str, n: int):
    if (true_key in data) != (pred_key in data):
        raise InputError(path, f"has {true_key if true_key in data else pred_key} without its partner")
    if true_key not in data:
        return None, None
    true, pred = data[true_key], data[pred_key]
    if true.shape[0] != n or pred.shape[0] != n:
        raise InputError(path, f"{true_key}/{pred_key} have {true.shape[0]}/{pred.shape[0]} rows, expected {n}")
    return true, pred


def load_predictions(path: str | Path) -> Predictions:
    """Load and check ``val_predictions.npz``; a missing, unreadable or inconsistent file raises InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "predictions file not found (was the run trained to the end?)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise InputError(path, f"not a readable .npz file ({err})") from None
    for key in ("video_id", "frame_idx"):
        if key not in data:
            raise InputError(path, f"missing array {key!r}")
    n = int(data["frame_idx"].shape[0])
    if data["video_id"].shape[0] != n:
        raise InputError(path, f"video_id has {data['video_id'].shape[0]} rows, frame_idx {n}")
    expr_true, expr_prob = _pair(data, path, "expr_true", "expr_prob", n)
    va_true, va_pred = _pair(data, path, "va_true", "va_pred", n)
    au_true, au_prob = _pair(data, path, "au_true", "au_prob", n)
    if expr_true is None and va_true is None and au_true is None:
        raise InputError(path, "holds no task (expected expr_true/expr_prob, va_true/va_pred or au_true/au_prob)")
    if expr_prob is not None and expr_prob.ndim != 2:
        raise InputError(path, f"expr_prob must be (N, C), got shape {expr_prob.shape}")
    for name, arr in (("va_true", va_true), ("va_pred", va_pred)):
        if arr is not None and (arr.ndim != 2 or arr.shape[1] != 2):
            raise InputError(path, f"{name} must be (N, 2), got shape {arr.shape}")
    classes = tuple(str(c) for c in data["expr_classes"]) if "expr_classes" in data else ()
    if classes and expr_prob is not None and len(classes) != expr_prob.shape[1]:
        raise InputError(path, f"{len(classes)} expr_classes but expr_prob has {expr_prob.shape[1]} columns")
    return Predictions(
        video_id=data["video_id"].astype(str), frame_idx=data["frame_idx"].astype(np.int64),
        expr_true=None if expr_true is None else expr_true.astype(np.int64),
        expr_prob=None if expr_prob is None else expr_prob.astype(np.float64),
        expr_classes=classes,
        va_true=None if va_true is None else va_true.astype(np.float64),
        va_pred=None if va_pred is None else va_pred.astype(np.float64),
        au_true=None if au_true is None else au_true.astype(np.int8),
        au_prob=None if au_prob is None else au_prob.astype(np.float64),
        label_level=_label_level(data, path),
    )


def _label_level(data: dict[str, np.ndarray], path: Path) -> str:
    """The file's ``label_level`` (files written before clip datasets have none: per-frame labels)."""
    if "label_level" not in data:
        return "frame"
    level = str(data["label_level"])
    if level not in ("frame", "clip"):
        raise InputError(path, f"label_level must be 'frame' or 'clip', got {level[:40]!r}")
    return level
