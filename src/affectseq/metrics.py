"""The one implementation of every metric in affectseq (NumPy, wrapping scikit-learn where it helps).

Conventions shared by every function here:

* Unannotated entries are ignored: expression/AU labels equal to ``-1`` and
  valence/arousal values that are NaN are removed (together with the matching
  predictions) before anything is computed.
* Expression predictions may be given as integer labels ``(N,)`` or as scores /
  probabilities ``(N, C)``; scores are turned into labels by ``argmax``.
* Statistics are computed in float64 and returned as Python ``float``.
* A metric over zero annotated entries is ``nan`` (there is nothing to score),
  never an exception: callers such as reports print it as such.

Macro-F1 averages over **all** ``num_classes`` classes (scikit-learn
``labels=range(num_classes)``, ``zero_division=0``): a class absent from both the
truth and the predictions scores F1 = 0 and still counts in the mean. The ABAW
organisers' script (sklearn's default ``labels=None``) averages only over the
classes present; on the full validation sets every class is present and the two
agree. We fix the denominator so that scores of different subsets and models are
always averages over the same classes and a model cannot gain from a class being
missing.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm

# ABAW 2020 (first edition) expression score weights: 0.67 * macro-F1 + 0.33 * accuracy.
ABAW2020_F1_WEIGHT = 0.67
ABAW2020_ACC_WEIGHT = 0.33


def _as_labels(y_pred: np.ndarray) -> np.ndarray:
    """Integer labels from labels ``(N,)`` or per-class scores ``(N, C)`` (argmax)."""
    arr = np.asarray(y_pred)
    if arr.ndim == 2:
        return np.argmax(arr, axis=1).astype(np.int64)
    if arr.ndim != 1:
        raise ValueError(f"predictions must be labels (N,) or scores (N, C), got shape {arr.shape}")
    return arr.astype(np.int64)


def _annotated_labels(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop entries whose true label is -1 (unannotated); check both sides have one entry per frame."""
    true = np.asarray(y_true).astype(np.int64).reshape(-1)
    pred = _as_labels(y_pred)
    if true.shape[0] != pred.shape[0]:
        raise ValueError(f"y_true has {true.shape[0]} entries but y_pred has {pred.shape[0]}")
    keep = true >= 0
    return true[keep], pred[keep]


def ccc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Lin's concordance correlation coefficient between two 1-D series.

    ``CCC = 2 * cov(t, p) / (var(t) + var(p) + (mean(t) - mean(p))**2)`` with
    population statistics (ddof = 0), as in the ABAW evaluation. Pairs whose
    truth or prediction is NaN are ignored.

    Values: 1 for identical series, -1 for ``p = 2*mean(t) - t`` (e.g. negation
    of a zero-mean series), 0 for a constant prediction against a varying truth.
    Degenerate cases: no annotated pair -> ``nan``; zero denominator (truth and
    prediction both constant and equal) -> 1.0, since they agree perfectly.
    """
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} entries but y_pred has {p.size}")
    keep = ~(np.isnan(t) | np.isnan(p))
    t, p = t[keep], p[keep]
    if t.size == 0:
        return float("nan")
    mean_t, mean_p = t.mean(), p.mean()
    cov = np.mean((t - mean_t) * (p - mean_p))
    denom = t.var() + p.var() + (mean_t - mean_p) ** 2
    if denom == 0.0:
        return 1.0
    return float(2.0 * cov / denom)


def mean_ccc(va_true: np.ndarray, va_pred: np.ndarray) -> float:
    """Mean of the CCC of each column of ``(N, D)`` arrays (valence and arousal for D = 2).

    Each column ignores its own NaN entries (see :func:`ccc`). A column with no
    annotated entry is ``nan`` and so makes the mean ``nan``.
    """
    per_dim = ccc_per_dim(va_true, va_pred)
    return float(np.mean(per_dim))


def ccc_per_dim(va_true: np.ndarray, va_pred: np.ndarray) -> np.ndarray:
    """CCC of each column of ``(N, D)`` arrays, as a float64 array ``(D,)`` (valence, arousal)."""
    t = np.asarray(va_true, dtype=np.float64)
    p = np.asarray(va_pred, dtype=np.float64)
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(f"VA arrays must both be (N, D), got {t.shape} and {p.shape}")
    return np.array([ccc(t[:, d], p[:, d]) for d in range(t.shape[1])])


def abaw_va_score(va_true: np.ndarray, va_pred: np.ndarray) -> float:
    """ABAW valence-arousal score: the mean of CCC_valence and CCC_arousal (see :func:`mean_ccc`)."""
    return mean_ccc(va_true, va_pred)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of annotated frames whose predicted label equals the true one; ``nan`` if none annotated."""
    true, pred = _annotated_labels(y_true, y_pred)
    if true.size == 0:
        return float("nan")
    return float(np.mean(true == pred))


def uar(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Unweighted average recall: the mean over classes of the fraction of their items predicted right.

    The headline metric of clip benchmarks (DFEW, FERV39k, MAFW), where classes are very
    unequal. Averaged over the classes **present in the truth** (a class without a true
    item has no recall; the benchmarks' test sets hold every class, so this equals the mean
    over all ``num_classes``). ``nan`` when nothing is annotated. Its companion, WAR
    (weighted average recall), is :func:`accuracy`.
    """
    true, pred = _annotated_labels(y_true, y_pred)
    if true.size == 0:
        return float("nan")
    present = np.unique(true)
    present = present[present < num_classes]
    return float(np.mean([np.mean(pred[true == c] == c) for c in present]))


def war(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Weighted average recall (the clip benchmarks' name for it): exactly :func:`accuracy`."""
    return accuracy(y_true, y_pred)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Unweighted mean over the ``num_classes`` classes of the per-class F1 score.

    F1_c = 2 * P_c * R_c / (P_c + R_c); a class with no true and no predicted
    frame scores 0 and still counts (see the module docstring for why). ``nan``
    when no frame is annotated.
    """
    true, pred = _annotated_labels(y_true, y_pred)
    if true.size == 0:
        return float("nan")
    return float(
        skm.f1_score(true, pred, labels=list(range(num_classes)), average="macro", zero_division=0)
    )


def _annotated_probs(y_true: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Annotated labels and their probability rows ``(N, C)`` (float64); ValueError on a shape mismatch."""
    true = np.asarray(y_true).astype(np.int64).reshape(-1)
    prob = np.asarray(probs, dtype=np.float64)
    if prob.ndim != 2 or prob.shape[0] != true.shape[0]:
        raise ValueError(f"probabilities must be (N, C) with N = {true.shape[0]}, got shape {prob.shape}")
    keep = true >= 0
    return true[keep], prob[keep]


def reliability_bins(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Top-class confidence binned into ``n_bins`` equal-width bins of [0, 1] (the usual reliability diagram).

    Returns ``edges`` (n_bins + 1,), and per bin ``count``, ``confidence`` (mean top-class
    probability) and ``accuracy`` (fraction whose top class is the true one); empty bins hold NaN.
    A confidence equal to a bin's upper edge falls in that bin (bins are ``(lo, hi]``, the first ``[0, hi]``).
    """
    true, prob = _annotated_probs(y_true, probs)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    confidence = prob.max(axis=1) if prob.size else np.zeros(0)
    correct = (prob.argmax(axis=1) == true) if prob.size else np.zeros(0, dtype=bool)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=confidence, minlength=n_bins) / count
        accuracy_per_bin = np.bincount(which, weights=correct.astype(np.float64), minlength=n_bins) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": accuracy_per_bin}


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """ECE of the top-class confidence: ``sum_b (n_b / N) * |accuracy_b - confidence_b|`` over
    :func:`reliability_bins` (15 equal-width bins by default, Guo et al. 2017); ``nan`` if none annotated.

    0 means that among faces given top probability p, a fraction p is classified correctly.
    """
    bins = reliability_bins(y_true, probs, n_bins)
    total = bins["count"].sum()
    if total == 0:
        return float("nan")
    used = bins["count"] > 0
    gaps = np.abs(bins["accuracy"][used] - bins["confidence"][used])
    return float(np.sum(bins["count"][used] / total * gaps))


def negative_log_likelihood(y_true: np.ndarray, probs: np.ndarray, eps: float = 1e-12) -> float:
    """Mean ``-log p(true class)`` over annotated frames (probabilities clipped at ``eps``); ``nan`` if none."""
    true, prob = _annotated_probs(y_true, probs)
    if true.size == 0:
        return float("nan")
    return float(-np.mean(np.log(np.clip(prob[np.arange(true.size), true], eps, 1.0))))


def per_class_scores(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    num_classes: int,
    class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Precision, recall, F1 and support (true count) per class as a DataFrame indexed by class name.

    Columns: ``precision``, ``recall``, ``f1``, ``support`` (int), ``predicted``
    (how many frames were predicted as the class). Undefined ratios (no true or
    no predicted frame of a class) are 0, as in :func:`macro_f1`.
    """
    true, pred = _annotated_labels(y_true, y_pred)
    labels = list(range(num_classes))
    names = list(class_names) if class_names is not None else [str(c) for c in labels]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes")
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        true, pred, labels=labels, zero_division=0
    )
    predicted = np.array([np.sum(pred == c) for c in labels], dtype=np.int64)
    return pd.DataFrame(
        {
            "precision": precision.astype(np.float64),
            "recall": recall.astype(np.float64),
            "f1": f1.astype(np.float64),
            "support": support.astype(np.int64),
            "predicted": predicted,
        },
        index=pd.Index(names, name="class"),
    )


def confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    num_classes: int,
    normalize: str | None = None,
) -> np.ndarray:
    """Confusion matrix ``(C, C)``: row = true class, column = predicted class.

    ``normalize=None`` gives integer counts; ``normalize="true"`` divides each row
    by its number of true frames (each row of a class with frames sums to 1; a
    class without true frames keeps a row of zeros). Predictions outside
    ``0..C-1`` are not counted in any column.
    """
    if normalize not in (None, "true"):
        raise ValueError(f"normalize must be None or 'true', got {normalize!r}")
    true, pred = _annotated_labels(y_true, y_pred)
    labels = list(range(num_classes))
    if true.size == 0:
        return np.zeros((num_classes, num_classes), dtype=np.float64 if normalize else np.int64)
    counts = skm.confusion_matrix(true, pred, labels=labels).astype(np.int64)
    if normalize is None:
        return counts
    rows = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros(counts.shape, dtype=np.float64), where=rows > 0)


def au_macro_f1(au_true: np.ndarray, au_pred: np.ndarray, threshold: float = 0.5) -> float:
    """Mean over action units of the binary F1 of the positive (active) class.

    ``au_true`` is ``(N, K)`` with 0/1 and -1 for unannotated; ``au_pred`` is 0/1
    labels or, if floating point, probabilities binarised at ``threshold``. Each
    AU ignores its own unannotated entries; AUs with no annotated entry are left
    out of the mean (``nan`` if none is annotated). An AU never active in truth
    nor prediction scores 0 (``zero_division=0``).
    """
    t = np.asarray(au_true)
    p = np.asarray(au_pred)
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(f"AU arrays must both be (N, K), got {t.shape} and {p.shape}")
    if np.issubdtype(p.dtype, np.floating):
        p = (p >= threshold).astype(np.int64)
    scores = []
    for k in range(t.shape[1]):
        keep = t[:, k] >= 0
        if not keep.any():
            continue
        scores.append(skm.f1_score(t[keep, k].astype(np.int64), p[keep, k].astype(np.int64),
                                   labels=[1], average="macro", zero_division=0))
    return float(np.mean(scores)) if scores else float("nan")


def abaw_expr_formula(num_classes: int) -> str:
    """Human-readable formula of :func:`abaw_expr_score` for this label space (for report tables)."""
    if num_classes == 7:
        return "ABAW 2020: 0.67*macro-F1(7) + 0.33*accuracy"
    if num_classes == 8:
        return "ABAW 3+: macro-F1(8)"
    raise ValueError(f"ABAW expression score needs 7 or 8 classes, got {num_classes}")


def abaw_expr_score(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """ABAW expression score.

    7 classes (ABAW 2020): ``0.67 * macro_f1 + 0.33 * accuracy``.
    8 classes (ABAW 3 onwards, with Other): ``macro_f1`` over the 8 classes.
    ``nan`` when no frame is annotated.
    """
    abaw_expr_formula(num_classes)  # validates num_classes
    f1 = macro_f1(y_true, y_pred, num_classes)
    if num_classes == 8:
        return f1
    return float(ABAW2020_F1_WEIGHT * f1 + ABAW2020_ACC_WEIGHT * accuracy(y_true, y_pred))


def bootstrap_ci(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``metric(y_true, y_pred)`` over resampled frames.

    Frames (rows) are drawn with replacement ``n_boot`` times from a seeded
    generator; the interval is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of the resampled metric. Frames are treated as independent, which
    holds for still-image sets (FER2013/FER+); for video frames it understates the
    uncertainty (resample videos instead).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if n_boot < 1 or len(y_true) == 0:
        raise ValueError("bootstrap needs n_boot >= 1 and at least one frame")
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        rows = rng.integers(0, len(y_true), len(y_true))
        values[b] = metric(y_true[rows], y_pred[rows])
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)
