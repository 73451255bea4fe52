"""Metrics on hand-computed values and scikit-learn cross-checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from affectseq import metrics as M


def test_ccc_identical_is_one() -> None:
    t = np.array([0.1, -0.4, 0.7, 0.2, -0.9])
    assert M.ccc(t, t) == pytest.approx(1.0)


def test_ccc_negated_zero_mean_is_minus_one() -> None:
    t = np.array([-0.5, -0.1, 0.0, 0.1, 0.5])
    assert M.ccc(t, -t) == pytest.approx(-1.0)


def test_ccc_constant_prediction_is_zero() -> None:
    t = np.array([0.2, 0.4, -0.6, 0.8])
    assert M.ccc(t, np.full_like(t, 0.3)) == pytest.approx(0.0)


def test_ccc_hand_example() -> None:
    # t = [1, 2, 3], p = [2, 2, 4]: mean_t = 2, mean_p = 8/3,
    # var_t = 2/3, var_p = ((-2/3)^2*2 + (4/3)^2)/3 = 8/9,
    # cov = ((-1)(-2/3) + 0 + (1)(4/3))/3 = 2/3,
    # CCC = (4/3) / (2/3 + 8/9 + 4/9) = (4/3) / 2 = 2/3.
    assert M.ccc([1.0, 2.0, 3.0], [2.0, 2.0, 4.0]) == pytest.approx(2.0 / 3.0)


def test_ccc_ignores_nan_and_degenerate_cases() -> None:
    assert M.ccc([1.0, np.nan, 2.0, 3.0], [2.0, 99.0, 2.0, 4.0]) == pytest.approx(2.0 / 3.0)
    assert np.isnan(M.ccc([np.nan, np.nan], [0.1, 0.2]))
    assert M.ccc([0.5, 0.5], [0.5, 0.5]) == 1.0
    # Both constant but different: numerator 0, denominator the squared mean gap.
    assert M.ccc([0.5, 0.5], [0.1, 0.1]) == 0.0


def test_ccc_scaled_prediction_is_below_pearson() -> None:
    rng = np.random.default_rng(0)
    t = rng.normal(size=200)
    p = 0.5 * t + 0.2  # Pearson r = 1, but scale and shift are penalised
    value = M.ccc(t, p)
    var_t = t.var()
    expected = 2 * 0.5 * var_t / (var_t + 0.25 * var_t + (t.mean() - p.mean()) ** 2)
    assert value == pytest.approx(expected)
    assert value < 0.99


def test_mean_ccc_and_abaw_va_score() -> None:
    va_true = np.array([[0.1, -0.3], [0.4, 0.2], [-0.5, 0.6], [np.nan, np.nan], [0.0, -0.1]])
    va_pred = np.array([[0.1, 0.3], [0.4, -0.2], [-0.5, -0.6], [0.9, 0.9], [0.0, 0.1]])
    # Row 3 is unannotated and ignored; valence then agrees exactly, arousal is negated (mean 0.1, so not -1).
    cv = M.ccc(va_true[:, 0], va_pred[:, 0])
    ca = M.ccc(va_true[:, 1], va_pred[:, 1])
    assert cv == pytest.approx(1.0)
    assert M.mean_ccc(va_true, va_pred) == pytest.approx((cv + ca) / 2)
    assert M.abaw_va_score(va_true, va_pred) == M.mean_ccc(va_true, va_pred)
    np.testing.assert_allclose(M.ccc_per_dim(va_true, va_pred), [cv, ca])


def test_accuracy_ignores_unannotated_and_accepts_scores() -> None:
    y_true = np.array([0, 1, 2, -1, 2])
    y_pred = np.array([0, 2, 2, 1, 2])
    assert M.accuracy(y_true, y_pred) == pytest.approx(3 / 4)
    scores = np.eye(3)[y_pred]
    assert M.accuracy(y_true, scores) == pytest.approx(3 / 4)
    assert np.isnan(M.accuracy([-1, -1], [0, 1]))


def test_macro_f1_matches_sklearn_over_all_classes() -> None:
    rng = np.random.default_rng(1)
    y_true = rng.integers(-1, 7, size=500)
    y_pred = rng.integers(0, 7, size=500)
    keep = y_true >= 0
    expected = skm.f1_score(y_true[keep], y_pred[keep], average="macro")
    assert M.macro_f1(y_true, y_pred, 7) == pytest.approx(expected)


def test_macro_f1_absent_class_counts_as_zero() -> None:
    # Perfect on classes 0 and 1; classes 2..6 never occur: F1 = (1 + 1 + 0*5) / 7.
    y = np.array([0, 0, 1, 1])
    assert M.macro_f1(y, y, 7) == pytest.approx(2 / 7)
    assert M.macro_f1(y, y, 8) == pytest.approx(2 / 8)


def test_macro_f1_hand_example() -> None:
    # class 0: tp=1, fp=1, fn=1 -> F1 = 0.5; class 1: tp=1, fp=1, fn=1 -> 0.5; class 2: tp=1 -> 1.
    y_true = [0, 0, 1, 1, 2]
    y_pred = [0, 1, 1, 0, 2]
    assert M.macro_f1(y_true, y_pred, 3) == pytest.approx((0.5 + 0.5 + 1.0) / 3)


def test_per_class_scores_table() -> None:
    y_true = np.array([0, 0, 1, 1, 2, -1])
    y_pred = np.array([0, 1, 1, 1, 0, 2])
    table = M.per_class_scores(y_true, y_pred, 4, class_names=["a", "b", "c", "d"])
    assert list(table.index) == ["a", "b", "c", "d"]
    assert table.loc["a", "precision"] == pytest.approx(0.5)
    assert table.loc["a", "recall"] == pytest.approx(0.5)
    assert table.loc["b", "precision"] == pytest.approx(2 / 3)
    assert table.loc["b", "recall"] == pytest.approx(1.0)
    assert table.loc["b", "f1"] == pytest.approx(0.8)
    assert table.loc["c", "f1"] == 0.0
    assert list(table["support"]) == [2, 2, 1, 0]
    assert list(table["predicted"]) == [2, 3, 0, 0]
    assert table["f1"].mean() == pytest.approx(M.macro_f1(y_true, y_pred, 4))


def test_confusion_matrix_counts_and_row_normalised() -> None:
    y_true = np.array([0, 0, 0, 1, 2, 2, -1])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 0])
    counts = M.confusion_matrix(y_true, y_pred, 4)
    np.testing.assert_array_equal(
        counts, [[1, 2, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    )
    norm = M.confusion_matrix(y_true, y_pred, 4, normalize="true")
    np.testing.assert_allclose(norm[0], [1 / 3, 2 / 3, 0, 0])
    np.testing.assert_allclose(norm.sum(axis=1), [1, 1, 1, 0])
    with pytest.raises(ValueError):
        M.confusion_matrix(y_true, y_pred, 4, normalize="pred")


def test_au_macro_f1() -> None:
    au_true = np.array([[1, 0, -1], [1, 1, -1], [0, 1, -1], [0, -1, -1]], dtype=np.int8)
    au_prob = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.5], [0.1, 0.7, 0.5], [0.6, 0.9, 0.5]])
    # AU0: tp=1, fn=1, fp=1 -> F1 0.5; AU1 (3 annotated): tp=2 -> F1 1; AU2 unannotated: left out.
    assert M.au_macro_f1(au_true, au_prob) == pytest.approx(0.75)
    assert M.au_macro_f1(au_true, (au_prob >= 0.5).astype(np.int8)) == pytest.approx(0.75)
    assert np.isnan(M.au_macro_f1(np.full((2, 2), -1), np.zeros((2, 2))))


def test_abaw_expr_score_formulas() -> None:
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 8, size=300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 8, size=300))
    assert M.abaw_expr_score(y_true, y_pred, 8) == pytest.approx(M.macro_f1(y_true, y_pred, 8))
    t7 = np.where(y_true == 7, -1, y_true)
    p7 = np.minimum(y_pred, 6)
    expected = 0.67 * M.macro_f1(t7, p7, 7) + 0.33 * M.accuracy(t7, p7)
    assert M.abaw_expr_score(t7, p7, 7) == pytest.approx(expected)
    assert "0.67" in M.abaw_expr_formula(7) and "macro-F1(8)" in M.abaw_expr_formula(8)
    with pytest.raises(ValueError):
        M.abaw_expr_score(t7, p7, 6)


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        M.accuracy([0, 1], [0])
    with pytest.raises(ValueError):
        M.ccc([0.0, 1.0], [0.0])
