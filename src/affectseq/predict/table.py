"""The per-frame prediction table (``frames.csv``): its columns and how it is assembled.

One row per processed frame and face; a frame without any face is present once
with ``face_id`` and every prediction empty. Columns, in order::

    frame_idx, time_sec, face_id, x1, y1, x2, y2, det_score,
    prob_neutral, prob_anger, prob_disgust, prob_fear, prob_happiness, prob_sadness, prob_surprise,
    [prob_other], label, [valence, arousal]

``prob_other`` appears only for 8-class models, ``valence``/``arousal`` only for
models with a VA head -- a model without one never gets invented VA columns.
Boxes are float pixels of the upright frame; ``label`` is the canonical class
name (:data:`affectseq.labels.EXPR_CLASSES_8`) with the highest probability. A face row
whose model gave no prediction (a sequence-to-one model on the first frame of a
track: it predicts a frame from the frames before it) has empty probabilities and label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # pandas (0.5-1 s) loads when a table is built, not for --help
    import pandas as pd

BOX_COLUMNS: tuple[str, ...] = ("x1", "y1", "x2", "y2")
VA_COLUMNS: tuple[str, ...] = ("valence", "arousal")


def prob_column(class_name: str) -> str:
    """``"Happiness"`` -> ``"prob_happiness"``."""
    return "prob_" + class_name.lower()


def frame_columns(classes: Sequence[str], has_va: bool) -> list[str]:
    """The exact column order of ``frames.csv`` for a model with ``classes`` (and a VA head or not)."""
    cols = ["frame_idx", "time_sec", "face_id", *BOX_COLUMNS, "det_score"]
    cols += [prob_column(c) for c in classes]
    cols.append("label")
    if has_va:
        cols += list(VA_COLUMNS)
    return cols


@dataclass
class FaceObservations:
    """Every face row of one video, in frame order (the pipeline's output before the table).

    ``expr_prob`` (N, C) and ``va`` (N, 2) are the final (temporal-stage) outputs;
    ``va`` is ``None`` for models without a VA head.
    """

    frame_idx: np.ndarray      # int64 (N,)
    face_id: np.ndarray        # int64 (N,)
    boxes: np.ndarray          # float32 (N, 4)
    det_score: np.ndarray      # float32 (N,)
    expr_prob: np.ndarray      # float32 (N, C)
    va: np.ndarray | None      # float32 (N, 2)

    @classmethod
    def empty(cls, num_classes: int, has_va: bool) -> "FaceObservations":
        return cls(
            frame_idx=np.zeros(0, np.int64), face_id=np.zeros(0, np.int64),
            boxes=np.zeros((0, 4), np.float32), det_score=np.zeros(0, np.float32),
            expr_prob=np.zeros((0, num_classes), np.float32),
            va=np.zeros((0, 2), np.float32) if has_va else None,
        )


def build_frames_table(
    frame_idx: np.ndarray,
    time_sec: np.ndarray,
    faces: FaceObservations,
    classes: Sequence[str],
    has_va: bool,
) -> pd.DataFrame:
    """Join every processed frame (``frame_idx``/``time_sec``) with the face rows.

    Frames with faces get one row per face (ordered by ``face_id``); frames with
    none get a single row whose face and prediction columns are empty (NaN/NA).
    """
    import pandas as pd

    frame_idx = np.asarray(frame_idx, dtype=np.int64)
    time_sec = np.asarray(time_sec, dtype=np.float64)
    n_face = len(faces.frame_idx)
    time_of = dict(zip(frame_idx.tolist(), time_sec.tolist()))
    face_frames = np.asarray(faces.frame_idx, dtype=np.int64)
    empty_frames = np.setdiff1d(frame_idx, face_frames, assume_unique=False)
    n_empty = len(empty_frames)
    n = n_face + n_empty
    num_classes = len(classes)

    data: dict[str, object] = {}
    all_frames = np.concatenate([face_frames, empty_frames])
    data["frame_idx"] = all_frames
    data["time_sec"] = np.array([time_of[f] for f in all_frames.tolist()], dtype=np.float64)
    data["face_id"] = pd.array(
        np.concatenate([faces.face_id, np.zeros(n_empty, np.int64)]), dtype="Int64"
    )
    if n_empty:
        data["face_id"][n_face:] = pd.NA  # type: ignore[index]
    boxes = np.vstack([faces.boxes.reshape(-1, 4), np.full((n_empty, 4), np.nan)])
    for j, col in enumerate(BOX_COLUMNS):
        data[col] = boxes[:, j].astype(np.float64)
    data["det_score"] = np.concatenate([faces.det_score, np.full(n_empty, np.nan)]).astype(np.float64)
    probs = np.vstack([faces.expr_prob.reshape(n_face, num_classes), np.full((n_empty, num_classes), np.nan)])
    for j, name in enumerate(classes):
        data[prob_column(name)] = probs[:, j].astype(np.float64)
    labels = np.array(list(classes) + [None], dtype=object)
    label_idx = np.full(n, len(classes))
    if n_face and num_classes:  # a VA-only model has no label
        # A face row without a prediction (NaN, e.g. a seq2one model on a track's first frame) has no label.
        predicted = ~np.isnan(faces.expr_prob).any(axis=1)
        label_idx[:n_face] = np.where(predicted, np.argmax(np.nan_to_num(faces.expr_prob, nan=-1.0), axis=1),
                                      len(classes))
    data["label"] = labels[label_idx]
    if has_va:
        va = faces.va if faces.va is not None else np.full((n_face, 2), np.nan)
        va = np.vstack([va.reshape(-1, 2), np.full((n_empty, 2), np.nan)])
        data["valence"] = va[:, 0].astype(np.float64)
        data["arousal"] = va[:, 1].astype(np.float64)

    table = pd.DataFrame(data, columns=frame_columns(classes, has_va))
    # Stable order: by frame, then face id (empty rows have one row per frame, so NA last is fine).
    order = np.lexsort((table["face_id"].fillna(-1).to_numpy(np.int64), table["frame_idx"].to_numpy()))
    return table.iloc[order].reset_index(drop=True)
