"""Known answers of the latent affect process and the nuisance design (no rendering)."""

from __future__ import annotations

import numpy as np
import pytest

from affectseq.config import load_config
from affectseq.data.synth import SynthConfig
from affectseq.data.synth.affect import (
    AU_COLUMNS,
    GEOMETRY_NAMES,
    PROTOTYPES,
    binary_episodes,
    low_pass,
    sample_affect,
    sample_regimes,
)
from affectseq.data.synth.video import sample_person
from affectseq.errors import ConfigError
from affectseq.labels import AU_NAMES_ABAW3, EXPR_CLASSES_8

FPS = 25


def test_frame_shares_of_the_regime_process_match_the_configured_shares() -> None:
    cfg = SynthConfig().affect
    expr, intensity, va_target = sample_regimes(np.random.default_rng(0), 300_000, cfg, FPS)
    shares = np.bincount(expr, minlength=8) / len(expr)
    np.testing.assert_allclose(shares, np.asarray(cfg.class_shares) / sum(cfg.class_shares), rtol=0.2)
    lo, hi = cfg.intensity_range
    assert intensity.min() >= lo and intensity.max() <= hi and np.abs(va_target).max() <= 1
    # Episodes last about the configured dwell time: count class changes.
    n_episodes = np.count_nonzero(np.diff(expr)) + 1
    expected = len(expr) / np.dot(shares, np.asarray(cfg.mean_dwell_sec) * FPS)
    assert 0.6 * expected < n_episodes < 1.1 * expected  # consecutive same-class episodes merge


def test_valence_arousal_are_smooth_bounded_and_sit_in_each_class_region() -> None:
    cfg = SynthConfig().affect
    track = sample_affect(np.random.default_rng(1), 60_000, cfg, FPS)
    assert track.va.dtype == np.float32 and np.abs(track.va).max() <= 1.0
    steps = np.abs(np.diff(track.va, axis=0))
    assert steps.mean() < 0.1 * track.va.std(axis=0).min()  # smooth at frame level
    means = {name: track.va[track.expr == k].mean(axis=0) for k, name in enumerate(EXPR_CLASSES_8)}
    assert means["Happiness"][0] > 0.3 and means["Sadness"][0] < -0.3 and means["Anger"][0] < -0.3
    assert means["Surprise"][1] > means["Neutral"][1] + 0.3 and means["Sadness"][1] < 0
    # The clean geometry follows the regime: mouth curve up when happy, down when sad.
    curve = track.geometry[:, GEOMETRY_NAMES.index("mouth_curve")]
    assert curve[track.expr == 4].mean() > 0.5 > -0.5 > curve[track.expr == 5].mean()


def test_action_units_use_the_abaw3_columns_and_follow_the_expressions() -> None:
    assert AU_COLUMNS == AU_NAMES_ABAW3
    track = sample_affect(np.random.default_rng(2), 60_000, SynthConfig().affect, FPS)
    rate = {name: track.au[track.expr == k].mean(axis=0) for k, name in enumerate(EXPR_CLASSES_8)}
    au = {name: j for j, name in enumerate(AU_COLUMNS)}
    assert rate["Happiness"][au["AU12"]] > 0.5 > rate["Sadness"][au["AU12"]]
    assert rate["Sadness"][au["AU15"]] > 0.5 > rate["Happiness"][au["AU15"]]
    assert rate["Surprise"][au["AU26"]] > rate["Neutral"][au["AU26"]] + 0.4
    assert set(np.unique(track.au)) <= {0, 1}


def test_binary_episodes_cover_the_requested_share_in_runs() -> None:
    mask = binary_episodes(np.random.default_rng(3), 200_000, 0.1, 20.0)
    assert mask.mean() == pytest.approx(0.1, abs=0.02)
    runs = np.count_nonzero(np.diff(mask.astype(int)) == 1)
    assert mask.sum() / runs == pytest.approx(20.0, rel=0.2)
    assert not binary_episodes(np.random.default_rng(3), 100, 0.0, 5.0).any()


def test_low_pass_keeps_constants_and_smooths_steps() -> None:
    x = np.r_[np.zeros(50), np.ones(50)]
    y = low_pass(x, 5.0)
    assert y[:50].max() == 0 and 0.6 < y[54] < 0.7 and y[-1] == pytest.approx(1.0, abs=1e-3)


def test_temporal_context_recovers_expressions_that_single_frames_miss() -> None:
    """Known-answer check of the nuisance design: reading the expression off one frame's observed
    geometry (nearest class prototype) is clearly imperfect; averaging the same reading over a
    window of frames is much better, because the per-frame noise is independent over time."""
    cfg = SynthConfig()
    rng = np.random.default_rng(4)
    prototypes = PROTOTYPES * np.mean(cfg.affect.intensity_range)
    single, window = [], []
    kernel = np.ones(11) / 11
    for _ in range(30):
        person = sample_person(rng, 300, cfg, (160.0, 128.0), 1.0)
        affect, observed = person.affect, person.observed
        smoothed = np.stack([np.convolve(np.pad(col, 5, mode="edge"), kernel, "valid") for col in observed.T], 1)
        for reading, out in ((observed, single), (smoothed, window)):
            distances = ((reading[:, None, :] - prototypes[None]) ** 2).sum(-1)
            out.append(distances.argmin(1) == affect.expr)
    single_acc, window_acc = np.concatenate(single).mean(), np.concatenate(window).mean()
    assert single_acc < 0.8
    assert window_acc > single_acc + 0.1


def test_config_checks_values_and_loads_overrides() -> None:
    cfg = load_config(SynthConfig, overrides=["affect.onset_sec=0.5", "nuisance.pixel_noise_range=[1, 2]"])
    assert cfg.affect.onset_sec == 0.5 and cfg.nuisance.pixel_noise_range == (1.0, 2.0)
    with pytest.raises(ConfigError, match="class_shares"):
        load_config(SynthConfig, overrides=["affect.class_shares=[1, 2]"])
    with pytest.raises(ConfigError, match="even"):
        SynthConfig(frame_width=321)
    with pytest.raises(ConfigError, match="absent_frac"):
        load_config(SynthConfig, overrides=["nuisance.absent_frac=1.5"])
