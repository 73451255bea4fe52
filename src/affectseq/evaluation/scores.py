"""Every metric of a set of predictions, computed only through :mod:`affectseq.metrics`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from affectseq import metrics as M
from affectseq.evaluation.clips import DEFAULT_CLIP_BOOTSTRAP, clip_metrics
from affectseq.evaluation.predictions import Predictions

ECE_BINS = 15  # equal-width confidence bins of the reported ECE and the reliability diagram


def compute_metrics(preds: Predictions, bootstrap: int = 0) -> dict[str, Any]:
    """JSON-able metrics per task present.

    ``expr``: ``n_frames`` (annotated), ``num_classes``, ``accuracy``,
    ``macro_f1``, ``abaw_score`` and ``abaw_formula``, ``per_class`` (precision,
    recall, F1, support, predicted per class), ``confusion_counts`` (rows true), and from the
    probabilities ``uar`` (mean per-class recall), ``ece`` (15 bins, top-class confidence) and ``nll``.
    ``va``: ``n_frames`` per dimension, ``ccc_valence``, ``ccc_arousal``,
    ``mean_ccc`` (= ABAW VA score). ``au``: ``au_macro_f1`` over annotated AUs.
    ``bootstrap`` > 0 adds ``ci95`` (95% percentile-bootstrap intervals over that many
    resamples of the frames) to ``expr`` (accuracy, macro-F1, UAR, ECE) and ``va`` (mean CCC).
    Clip data (``preds.label_level == "clip"``) adds ``level: "clip"``, ``uar``, ``war`` and
    ``clip`` (:func:`affectseq.evaluation.clips.clip_metrics`, with CIs over clips: ``bootstrap``
    resamples, 1000 when 0).
    """
    out: dict[str, Any] = {"n_frames": len(preds), "n_videos": int(len(np.unique(preds.video_id)))}
    if preds.expr_true is not None:
        out["expr"] = expr_metrics(preds.expr_true, preds.expr_pred, preds.num_classes, preds.class_names)
        out["expr"].update(probability_metrics(preds.expr_true, preds.expr_prob))
        if bootstrap:
            n = preds.num_classes
            out["expr"]["ci95"] = {
                "accuracy": M.bootstrap_ci(M.accuracy, preds.expr_true, preds.expr_pred, bootstrap),
                "macro_f1": M.bootstrap_ci(lambda t, p: M.macro_f1(t, p, n), preds.expr_true, preds.expr_pred,
                                           bootstrap),
                "uar": M.bootstrap_ci(lambda t, p: M.uar(t, p, n), preds.expr_true, preds.expr_pred, bootstrap),
                # Resamples rows of the probabilities: the interval of the calibration error itself.
                "ece": M.bootstrap_ci(M.expected_calibration_error, preds.expr_true, preds.expr_prob, bootstrap),
            }
    if preds.va_true is not None:
        out["va"] = va_metrics(preds.va_true, preds.va_pred)
        if bootstrap:
            out["va"]["ci95"] = {"mean_ccc": M.bootstrap_ci(M.mean_ccc, preds.va_true, preds.va_pred, bootstrap)}
    if preds.au_true is not None:
        annotated = preds.au_true >= 0
        out["au"] = {
            "n_annotated_entries": int(annotated.sum()),
            "au_macro_f1": M.au_macro_f1(preds.au_true, preds.au_prob),
        }
    if preds.label_level == "clip" and preds.expr_true is not None:
        # Clip data is scored over clips: UAR and WAR at the top level, the rest under "clip".
        out["level"] = "clip"
        out["clip"] = clip_metrics(preds, bootstrap or DEFAULT_CLIP_BOOTSTRAP)
        out["uar"], out["war"] = out["clip"]["uar"], out["clip"]["war"]
    return out


def expr_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int,
                 class_names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Expression metrics (see :func:`compute_metrics`) for labels ``y_true`` and predicted labels/scores."""
    table = M.per_class_scores(y_true, y_pred, num_classes, class_names)
    formula = M.abaw_expr_formula(num_classes) if num_classes in (7, 8) else None
    return {
        "n_frames": int(np.sum(np.asarray(y_true) >= 0)),
        "num_classes": num_classes,
        "accuracy": M.accuracy(y_true, y_pred),
        "macro_f1": M.macro_f1(y_true, y_pred, num_classes),
        "abaw_score": M.abaw_expr_score(y_true, y_pred, num_classes) if formula else None,
        "abaw_formula": formula,
        "per_class": per_class_records(table),
        "confusion_counts": M.confusion_matrix(y_true, y_pred, num_classes).tolist(),
    }


def probability_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """UAR, ECE (15 bins, top-class confidence) and NLL of expression probabilities ``(N, C)``."""
    return {
        "uar": M.uar(y_true, probs, probs.shape[1]),
        "ece": M.expected_calibration_error(y_true, probs, ECE_BINS),
        "nll": M.negative_log_likelihood(y_true, probs),
        "ece_bins": ECE_BINS,
    }


def va_metrics(va_true: np.ndarray, va_pred: np.ndarray) -> dict[str, Any]:
    """Valence/arousal CCCs (see :func:`compute_metrics`)."""
    per_dim = M.ccc_per_dim(va_true, va_pred)
    annotated = ~np.isnan(np.asarray(va_true, dtype=np.float64))
    return {
        "n_frames": [int(annotated[:, 0].sum()), int(annotated[:, 1].sum())],
        "ccc_valence": float(per_dim[0]),
        "ccc_arousal": float(per_dim[1]),
        "mean_ccc": M.mean_ccc(va_true, va_pred),
    }


def per_class_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per-class table as a list of plain dicts (class name first) for JSON."""
    return [{"class": str(name), **{k: (int(v) if k in ("support", "predicted") else float(v))
                                   for k, v in row.items()}}
            for name, row in table.iterrows()]


def markdown_table(frame: pd.DataFrame, float_format: str = "{:.4f}", index: bool = True) -> str:
    """A GitHub Markdown table of ``frame`` (no tabulate dependency); floats formatted, NaN as ``nan``."""
    columns = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]

    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return "nan" if np.isnan(value) else float_format.format(value)
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    # itertuples keeps each column's dtype (iterrows would turn int counts into floats).
    for row in frame.itertuples(index=True):
        cells = ([cell(row[0])] if index else []) + [cell(v) for v in row[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
