"""Scoring several models on the identical set of validation frames.

Each model of a study (CNN alone, CNN + RNN, balanced or not) writes its own
``val_predictions.npz``; they rarely cover the same frames: a sequence-to-one
RNN has no prediction for the first frames of a video (no full window before
them) but does predict frames without a face crop, which a frame CNN cannot.
:func:`align_predictions` keeps the frames every model predicts, keyed by
``(video_id, frame_idx)``, in one order, and checks that the truths agree there;
:func:`score_aligned` then computes every row's metrics on exactly those frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from affectseq import metrics as M
from affectseq.errors import AffectseqError
from affectseq.evaluation.predictions import Predictions


class AlignmentError(AffectseqError):
    """Predictions of different models disagree on the ground truth of a shared frame, or share no frame."""


@dataclass(frozen=True)
class AlignedRows:
    """Row name -> predictions restricted to the common frames (same frame order in every row)."""

    rows: dict[str, Predictions]
    n_common: int
    n_per_row: dict[str, int]  # frames each row predicted before alignment

    @property
    def names(self) -> list[str]:
        return list(self.rows)


def _frame_table(preds: Predictions, name: str) -> pd.DataFrame:
    table = pd.DataFrame({"video_id": preds.video_id.astype(str), "frame_idx": preds.frame_idx.astype(np.int64),
                          f"pos_{name}": np.arange(len(preds))})
    if table.duplicated(["video_id", "frame_idx"]).any():
        raise AlignmentError(f"row {name!r}: some (video_id, frame_idx) pairs are predicted twice")
    return table


def align_predictions(rows: Mapping[str, Predictions], task: str) -> AlignedRows:
    """Restrict every row to the frames all rows predict, sorted by ``(video_id, frame_idx)``.

    ``task`` ("expr" or "va") names the labels compared across rows: on a shared
    frame every row must carry the same truth (else the rows were not made from
    the same data and comparing them would be meaningless).
    """
    if not rows:
        raise ValueError("no rows to align")
    names = list(rows)
    common: pd.DataFrame | None = None
    for name in names:
        table = _frame_table(rows[name], name)
        common = table if common is None else common.merge(table, on=["video_id", "frame_idx"], how="inner")
    assert common is not None
    if common.empty:
        raise AlignmentError(f"the {len(names)} models share no predicted validation frame")
    common = common.sort_values(["video_id", "frame_idx"], kind="stable")
    aligned = {name: rows[name].subset(common[f"pos_{name}"].to_numpy()) for name in names}
    _check_truths_agree(aligned, task)
    return AlignedRows(rows=aligned, n_common=len(common), n_per_row={n: len(rows[n]) for n in names})


def _check_truths_agree(aligned: Mapping[str, Predictions], task: str) -> None:
    names = list(aligned)
    first = aligned[names[0]]
    for name in names[1:]:
        other = aligned[name]
        if task == "expr":
            same = np.array_equal(first.expr_true, other.expr_true)
        else:
            # Labels may pass through float16/float32 stores: compare with a tolerance, NaN == NaN.
            same = np.allclose(first.va_true, other.va_true, atol=2e-3, equal_nan=True)
        if not same:
            raise AlignmentError(f"rows {names[0]!r} and {name!r} disagree on the {task} labels of shared frames")


def chance_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, n_perm: int = 20,
                    seed: int = 0) -> float:
    """Macro-F1 of the same predictions shuffled across frames (mean of ``n_perm`` seeded permutations).

    The permutation keeps how often each class is predicted and breaks only the link to the frames, so
    it is the chance level of *this* prediction distribution (a majority-class predictor, a balanced one
    and a uniform guesser each get their own).
    """
    rng = np.random.default_rng(seed)
    keep = np.asarray(y_true) >= 0
    t, p = np.asarray(y_true)[keep], np.asarray(y_pred)[keep]
    return float(np.mean([M.macro_f1(t, rng.permutation(p), num_classes) for _ in range(n_perm)]))


def score_aligned(aligned: AlignedRows, task: str, num_classes: int | None = None) -> pd.DataFrame:
    """One row of metrics per model on the common frames (``n_frames`` = annotated common frames).

    VA columns: ``ccc_valence``, ``ccc_arousal``, ``mean_ccc``. EXPR columns:
    ``accuracy`` (= WAR on clips), ``uar`` (mean per-class recall), ``macro_f1``, ``macro_f1_chance``
    (:func:`chance_macro_f1`), ``abaw_score`` and ``abaw_formula`` -- macro-F1 over 8 classes when the
    label space has Other, else the ABAW 2020 formula (NaN and ``-`` for other label spaces). (Chance CCC needs no column: shuffled predictions have CCC ~ 0.)
    """
    records = []
    for name, preds in aligned.rows.items():
        record: dict[str, object] = {"row": name, "task": task, "n_common_frames": aligned.n_common}
        if task == "va":
            if preds.va_true is None:
                raise AlignmentError(f"row {name!r} has no VA predictions")
            per_dim = M.ccc_per_dim(preds.va_true, preds.va_pred)
            record.update(n_frames=int((~np.isnan(preds.va_true).any(axis=1)).sum()),
                          ccc_valence=float(per_dim[0]), ccc_arousal=float(per_dim[1]),
                          mean_ccc=M.mean_ccc(preds.va_true, preds.va_pred))
        else:
            if preds.expr_true is None:
                raise AlignmentError(f"row {name!r} has no EXPR predictions")
            n = num_classes or preds.num_classes
            y_pred = preds.expr_pred
            abaw = n in (7, 8)  # a clip dataset's own classes (e.g. 5) have no ABAW score
            record.update(n_frames=int((preds.expr_true >= 0).sum()),
                          accuracy=M.accuracy(preds.expr_true, y_pred),
                          uar=M.uar(preds.expr_true, y_pred, n),
                          macro_f1=M.macro_f1(preds.expr_true, y_pred, n),
                          macro_f1_chance=chance_macro_f1(preds.expr_true, y_pred, n),
                          abaw_score=M.abaw_expr_score(preds.expr_true, y_pred, n) if abaw else float("nan"),
                          abaw_formula=M.abaw_expr_formula(n) if abaw else "-")
        records.append(record)
    return pd.DataFrame.from_records(records)
