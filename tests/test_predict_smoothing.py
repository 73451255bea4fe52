"""Time-window smoothing over a face track: centred offline, trailing causal, masked gaps, streaming = batch."""

from __future__ import annotations

import numpy as np
import pytest

from affectseq.predict.smoothing import CausalSmoother, smooth_track


def test_offline_window_is_centred_on_known_values() -> None:
    times = np.arange(6) * 0.1
    values = np.array([0, 0, 0, 6, 6, 6], float)
    out = smooth_track(values, times, window_sec=0.2, mode="offline")  # +-0.1 s: 3 samples
    np.testing.assert_allclose(out, [0, 0, 2, 4, 6, 6])


def test_causal_window_uses_only_the_past() -> None:
    times = np.arange(6) * 0.1
    values = np.array([0, 0, 0, 6, 6, 6], float)
    out = smooth_track(values, times, window_sec=0.2, mode="causal")  # (t - 0.2, t]: 2 samples
    np.testing.assert_allclose(out, [0, 0, 0, 3, 6, 6])
    changed = values.copy()
    changed[4:] = -100
    np.testing.assert_allclose(smooth_track(changed, times, 0.2, "causal")[:4], out[:4])


def test_gaps_are_masked_not_zero() -> None:
    times = np.arange(7) * 0.1
    probs = np.tile([0.2, 0.8], (7, 1))
    probs[3] = np.nan  # the face is missing at frame 3
    out = smooth_track(probs, times, window_sec=0.5, mode="offline")
    assert np.isnan(out[3]).all()
    np.testing.assert_allclose(out[[0, 1, 2, 4, 5, 6]], np.tile([0.2, 0.8], (6, 1)))


def test_window_in_seconds_not_frames() -> None:
    """The same window means the same time span at 10 and 30 fps."""
    slow, fast = np.arange(0, 2, 0.1), np.arange(0, 2, 1 / 30)
    step = lambda t: (t >= 1.0).astype(float)  # noqa: E731
    a = smooth_track(step(slow), slow, 0.4, "offline")
    b = smooth_track(step(fast), fast, 0.4, "offline")
    # Both ramps span 1.0 +- 0.2 s whatever the frame rate: flat outside it.
    assert a[np.searchsorted(slow, 0.65)] == 0 and b[np.searchsorted(fast, 0.65)] == 0
    assert a[np.searchsorted(slow, 1.25)] == 1 and b[np.searchsorted(fast, 1.25)] == 1


def test_zero_window_and_normalisation() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(7), size=50)
    times = np.sort(rng.uniform(0, 5, 50))
    np.testing.assert_allclose(smooth_track(probs, times, 0.0), probs)
    for mode in ("offline", "causal"):
        np.testing.assert_allclose(smooth_track(probs, times, 1.0, mode).sum(axis=1), 1.0)
    with pytest.raises(ValueError):
        smooth_track(probs, times, 1.0, "sideways")


def test_streaming_matches_batch_causal() -> None:
    rng = np.random.default_rng(1)
    times = np.cumsum(rng.uniform(0.02, 0.2, 80))
    probs = rng.dirichlet(np.ones(7), size=80)
    present = rng.uniform(size=80) > 0.2
    expected = smooth_track(probs, times, 0.5, "causal", present=present)
    smoother = CausalSmoother(0.5)
    for i in np.flatnonzero(present):
        np.testing.assert_allclose(smoother.update(3, times[i], probs[i]), expected[i])
    smoother.prune(times[-1] + 10)
    assert not smoother._tracks
