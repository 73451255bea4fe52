"""Wall-time budgets of frame training: when a run stops, and that a time-clocked schedule anneals fully."""

from __future__ import annotations

import csv
import types

import pytest

from affectseq.config import load_config
from affectseq.training import fit
from affectseq.training.fit import stop_before_epoch
from affectseq.training.frames import FrameTrainConfig, train_frames


def test_step_clock_stops_before_an_epoch_that_would_overrun() -> None:
    # 3 epochs in 300 s: the next one is projected to end at 400 s.
    assert stop_before_epoch(300.0, 3, budget_sec=390.0, schedule_clock="step")
    assert not stop_before_epoch(300.0, 3, budget_sec=400.0, schedule_clock="step")
    assert not stop_before_epoch(0.0, 0, budget_sec=1.0, schedule_clock="step")  # always one epoch


def test_time_clock_trains_until_the_budget() -> None:
    # One 7-minute epoch of a 12-minute budget: the old rule stopped here with the lr barely annealed.
    assert not stop_before_epoch(420.0, 1, budget_sec=720.0, schedule_clock="time")
    assert stop_before_epoch(720.0, 1, budget_sec=720.0, schedule_clock="time")


class _FakeClock:
    """``time.monotonic`` advancing one second per call: epochs take a fixed number of 'seconds'."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


def test_time_clocked_run_ends_mid_epoch_with_the_lr_annealed(tmp_path, fer2013_path, monkeypatch) -> None:
    monkeypatch.setattr(fit, "time", types.SimpleNamespace(monotonic=_FakeClock().monotonic))
    config = load_config(FrameTrainConfig, overrides={
        "task": "expr", "encoder": {"name": "resnet18", "input_size": 32}, "augment": {"enabled": False},
        "epochs": 10, "batch_size": 32, "lr": 0.01, "min_lr_ratio": 0.01, "warmup_epochs": 0.0,
        "limit_train": 256, "limit_val": 64, "test_split": None, "threads": 1, "seed": 0,
        "schedule_clock": "time", "max_minutes": 20 / 60,  # 20 fake seconds; an epoch is 8 steps, ~10 s
    })
    summary = train_frames(fer2013_path, tmp_path / "run", config)
    with open(tmp_path / "run" / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert "mid-epoch" in summary["stop_reason"]
    assert 2 <= len(rows) < 10  # more than the whole epochs that fit, fewer than configured
    # The last step ran at the end of the budget: lr at its minimum (0.01 * 0.01), not mid-cosine.
    assert float(rows[-1]["lr"]) == pytest.approx(config.lr * config.min_lr_ratio, rel=0.05)
