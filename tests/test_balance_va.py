"""The paper's VA downsampling on constructed labels whose keep probabilities are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from affectseq.data.balance import VADownsampler, _bin_index, describe_distribution, va_downsample

# Valence spans [-1, 1] and arousal [0, 1], so with 2 bins per axis the edges are
# valence [-1, 0, 1] and arousal [0, 0.5, 1]: different per axis, which is what
# exposes the paper code's bug (arousal looked up with the valence edges).
GROUPS = {
    #  name: (point, copies)
    "A": ((0.5, 0.75), 6),   # bin (1, 1): d = 6
    "Z": ((0.0, 0.0), 2),    # bin (1, 0), counted, then dropped
    "B1": ((-1.0, 0.0), 1),  # bin (0, 0)
    "B2": ((-0.5, 0.25), 1),  # bin (0, 0): d = 2 (arousal 0.25 would be bin 1 with valence edges)
    "C": ((-0.5, 1.0), 1),   # bin (0, 1): d = 1 (maxima fall in the last, closed bin)
    "D": ((1.0, 0.25), 1),   # bin (1, 0): d = 3 with the two (0, 0) frames
}
# hist = [[2, 1], [3, 6]]: mean 3, max 6 -> m = 4.5; p = clip(1 - d / m, 0, 1).
EXPECTED_P = {"A": 0.0, "Z": 0.0, "B1": 5 / 9, "B2": 5 / 9, "C": 7 / 9, "D": 1 / 3}


def _constructed(repeat: int = 1) -> tuple[np.ndarray, np.ndarray]:
    points, names = [], []
    for name, (point, copies) in GROUPS.items():
        points += [point] * copies * repeat
        names += [name] * copies * repeat
    return np.array(points, dtype=np.float32), np.array(names)


def test_keep_probabilities_by_hand() -> None:
    va, names = _constructed()
    sampler = VADownsampler(bins=2)
    prob = sampler.keep_probabilities(va)
    np.testing.assert_array_equal(sampler.hist_, [[2, 1], [3, 6]])
    np.testing.assert_allclose(sampler.valence_edges_, [-1, 0, 1])
    np.testing.assert_allclose(sampler.arousal_edges_, [0, 0.5, 1])
    assert sampler.m_ == pytest.approx(4.5)
    for name, p in EXPECTED_P.items():
        np.testing.assert_allclose(prob[names == name], p, err_msg=name)


def test_keep_rate_matches_p_and_zero_zero_dropped() -> None:
    # Repeating every frame scales all bin counts and m alike, so p is unchanged.
    va, names = _constructed(repeat=2000)
    kept = va_downsample(va, bins=2, random_state=0)
    kept_names = names[kept]
    assert "Z" not in set(kept_names) and "A" not in set(kept_names)
    for name in ("B1", "B2", "C", "D"):
        rate = np.mean(kept_names == name) * len(kept) / np.sum(names == name)
        assert rate == pytest.approx(EXPECTED_P[name], abs=0.04), name


def test_seeded_reproducible_and_sorted() -> None:
    rng = np.random.default_rng(5)
    va = np.clip(rng.normal(0.2, 0.3, size=(5000, 2)), -1, 1).astype(np.float32)
    a = va_downsample(va, random_state=3)
    b = va_downsample(va, random_state=3)
    c = va_downsample(va, random_state=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(np.diff(a) > 0) and a.dtype == np.int64
    # Dense centre is thinned, so the result is smaller but not empty.
    assert 0 < len(a) < len(va)


def test_default_40_bins_matches_numpy_histogram2d_and_lookup() -> None:
    rng = np.random.default_rng(6)
    va = np.column_stack([rng.uniform(-0.8, 0.9, 3000), rng.normal(0.1, 0.2, 3000)]).astype(np.float32)
    va[:50] = 0.0
    va[50:60] = np.nan
    sampler = VADownsampler(random_state=0)
    prob = sampler.keep_probabilities(va)
    annotated = ~np.isnan(va).any(axis=1)
    expected_hist, _, _ = np.histogram2d(va[annotated, 0], va[annotated, 1], bins=40)
    np.testing.assert_array_equal(sampler.hist_, expected_hist)
    # Each frame is looked up in the bin histogram2d counted it in: per-bin tallies reproduce hist.
    vi = _bin_index(va[annotated, 0].astype(np.float64), sampler.valence_edges_)
    ai = _bin_index(va[annotated, 1].astype(np.float64), sampler.arousal_edges_)
    tally = np.bincount(vi * 40 + ai, minlength=1600).reshape(40, 40)
    np.testing.assert_array_equal(tally, expected_hist)
    m = (expected_hist.mean() + expected_hist.max()) / 2
    p_expected = np.clip(1 - expected_hist[vi, ai] / m, 0, 1)
    p_expected[(va[annotated, 0] == 0) & (va[annotated, 1] == 0)] = 0
    np.testing.assert_allclose(prob[annotated], p_expected)
    assert np.all(prob[~annotated] == 0)


def test_unannotated_kept_only_when_asked() -> None:
    va, _ = _constructed()
    va = np.vstack([va, [[np.nan, np.nan]]]).astype(np.float32)
    last = len(va) - 1
    assert last not in va_downsample(va, bins=2, random_state=0)
    assert last in va_downsample(va, bins=2, random_state=0, keep_unannotated=True)


def test_distribution_report_before_after() -> None:
    va, _ = _constructed(repeat=100)
    kept = va_downsample(va, bins=2, random_state=1)
    before = describe_distribution(va=va)["va"]
    after = describe_distribution(va=va[kept])["va"]
    assert before["n_annotated"] == 1200 and before["n_zero_zero"] == 200
    assert after["n_zero_zero"] == 0 and after["n_annotated"] == len(kept)
    assert np.sum(before["hist"]) == 1200 and np.sum(after["hist"]) == len(kept)
