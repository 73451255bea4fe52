"""Expression samplers and class weights on synthetic labels with known counts."""

from __future__ import annotations

import numpy as np
import pytest

from affectseq.data.balance import (
    ExprDownsampler,
    ExprOversampler,
    class_weights,
    describe_distribution,
    expr_downsample,
    expr_oversample,
)


def _labels() -> np.ndarray:
    # class 0: 50, class 1: 10, class 2: 30, class 3: absent, plus 7 unannotated; shuffled.
    labels = np.array([0] * 50 + [1] * 10 + [2] * 30 + [-1] * 7)
    return np.random.default_rng(0).permutation(labels)


def _counts(labels: np.ndarray, idx: np.ndarray) -> list[int]:
    return np.bincount(labels[idx][labels[idx] >= 0], minlength=4).tolist()


def test_downsample_to_minority() -> None:
    labels = _labels()
    idx = expr_downsample(labels, random_state=0)
    assert _counts(labels, idx) == [10, 10, 10, 0]
    assert len(np.unique(idx)) == len(idx) and np.all(np.diff(idx) > 0)
    assert np.all(labels[idx] >= 0)
    # The minority class keeps every frame.
    assert set(np.flatnonzero(labels == 1)) <= set(idx)


def test_downsample_to_cap_and_keep_unannotated() -> None:
    labels = _labels()
    idx = ExprDownsampler(target=20, keep_unannotated=True).fit_resample(labels, random_state=1)
    assert _counts(labels, idx) == [20, 10, 20, 0]
    assert np.sum(labels[idx] == -1) == 7


def test_downsample_seeded() -> None:
    labels = _labels()
    a = expr_downsample(labels, random_state=3)
    np.testing.assert_array_equal(a, expr_downsample(labels, random_state=3))
    assert not np.array_equal(a, expr_downsample(labels, random_state=4))
    with pytest.raises(ValueError):
        expr_downsample(labels, target=0)


def test_oversample_to_majority_keeps_originals() -> None:
    labels = _labels()
    idx = expr_oversample(labels, random_state=0)
    assert _counts(labels, idx) == [50, 50, 50, 0]
    assert set(np.flatnonzero(labels >= 0)) == set(idx)
    idx = ExprOversampler(target=40).fit_resample(labels, random_state=0)
    assert _counts(labels, idx) == [50, 40, 40, 0]


def test_class_weights_hand_values() -> None:
    labels = np.array([0] * 6 + [1] * 2 + [3] * 4 + [-1] * 3)
    # n = 12 annotated, k = 3 classes present: w = 12 / (3 * n_c); absent class 2 -> 0.
    w = class_weights(labels, 4)
    np.testing.assert_allclose(w, [2 / 3, 2.0, 0.0, 1.0])
    assert w.dtype == np.float32
    # Weighted class totals are equal.
    counts = np.array([6, 2, 0, 4])
    totals = (w * counts)[counts > 0]
    np.testing.assert_allclose(totals, totals[0])
    with pytest.raises(ValueError):
        class_weights([0, 5], 4)


def test_describe_distribution_expr() -> None:
    labels = _labels()
    names = ["a", "b", "c", "d"]
    before = describe_distribution(expr=labels, class_names=names)["expr"]
    assert before["counts"] == {"a": 50, "b": 10, "c": 30, "d": 0}
    assert before["n_unannotated"] == 7 and before["n_annotated"] == 90
    assert before["imbalance_ratio"] == pytest.approx(5.0)
    assert before["fractions"]["a"] == pytest.approx(50 / 90)
    after = describe_distribution(expr=labels[expr_downsample(labels, random_state=0)], class_names=names)["expr"]
    assert after["imbalance_ratio"] == pytest.approx(1.0)
