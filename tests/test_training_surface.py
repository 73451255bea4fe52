"""One training surface for frame and sequence training: argument order, result type, option names, reseeding."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

import numpy as np
import pytest

from affectseq.config import config_to_dict, load_config
from affectseq.errors import ConfigError
from affectseq.training.fit import TrainResult, epoch_seed, in_current_form
from affectseq.training.frames import FrameTrainConfig, train_frames
from affectseq.training.sequence import SequenceTrainConfig, train_sequence

from test_sequence_training import write_trend_store


def test_both_entry_points_take_the_same_arguments_in_the_same_order() -> None:
    frames, sequence = inspect.signature(train_frames), inspect.signature(train_sequence)
    assert list(frames.parameters)[1:] == list(sequence.parameters)[1:] == [
        "run_dir", "config", "resume", "progress", "on_epoch_end", "command", "ctx", "allow_config_change"]
    for name in ("resume", "progress", "on_epoch_end", "command", "ctx", "allow_config_change"):
        assert frames.parameters[name].kind == sequence.parameters[name].kind == inspect.Parameter.KEYWORD_ONLY
    assert frames.return_annotation == sequence.return_annotation == "TrainResult"


def test_shared_options_have_one_name_and_one_vocabulary() -> None:
    shared = {"patience", "balance", "select_metric", "max_minutes", "device", "threads", "seed", "epochs",
              "batch_size", "eval_batch_size", "lr", "weight_decay", "va_loss", "num_workers", "task", "train_split",
              "val_split"}
    assert shared <= set(config_to_dict(FrameTrainConfig())) & set(config_to_dict(SequenceTrainConfig()))
    for cls in (FrameTrainConfig, SequenceTrainConfig):
        for balance in ("none", "downsample", "oversample", "class_weight"):
            assert load_config(cls, overrides={"balance": balance}).balance == balance


def test_older_option_names_still_load_with_a_warning(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    import affectseq.config

    # the warning is given once per process: start from a process that has not warned yet, whatever ran before
    monkeypatch.setattr(affectseq.config, "_WARNED", set())
    with caplog.at_level(logging.WARNING):
        frame = load_config(FrameTrainConfig, overrides=["early_stopping_patience=2"])
        seq = load_config(SequenceTrainConfig, overrides=["balance=va_downsample", "task=va"])
        weighted = load_config(SequenceTrainConfig, overrides=["class_weighted=true"])
    assert frame.patience == 2 and seq.balance == "downsample" and weighted.balance == "class_weight"
    assert "early_stopping_patience is deprecated" in caplog.text and "balance=va_downsample" in caplog.text
    with pytest.raises(ConfigError, match="both given"):
        load_config(FrameTrainConfig, overrides=["early_stopping_patience=2", "patience=3"])
    with pytest.raises(ConfigError, match="cannot both be set"):
        load_config(SequenceTrainConfig, overrides=["class_weighted=true", "balance=downsample"])
    # A resume checkpoint's config written with the older names compares equal to today's spelling.
    old = {"patience": 5, "balance": "expr_downsample", "class_weighted": False,
           "model": {"cell": "lstm", "hidden_sizes": [16], "bidirectional": False, "dropout": 0.0,
                     "mask_channel": True}}
    current = config_to_dict(load_config(SequenceTrainConfig, overrides=["balance=downsample", "model.arch=lstm",
                                                                         "model.hidden_sizes=[16]"]))
    assert all(current[k] == v for k, v in in_current_form(old, SequenceTrainConfig).items())
    assert in_current_form({"early_stopping_patience": 3}, FrameTrainConfig) == {"patience": 3}


def test_one_reseeding_formula() -> None:
    assert epoch_seed(3, 1) == 3000 and epoch_seed(3, 2) == 3001 and epoch_seed(3, 2, rank=1) == 3001 + 7919
    seeds = {epoch_seed(s, e, r) for s in range(4) for e in range(1, 30) for r in range(3)}
    assert len(seeds) == 4 * 29 * 3  # no two (seed, epoch, rank) of a small study share draws


def test_sequence_result_is_a_train_result_and_frames_keep_the_old_order(tmp_path: Path) -> None:
    store = write_trend_store(tmp_path / "store", n_videos=4, n_frames=30)
    config = load_config(SequenceTrainConfig, overrides={"window": 5, "epochs": 1, "batch_size": 8, "device": "cpu",
                                                         "model": {"hidden_sizes": [4]}})
    epochs: list[int] = []
    result = train_sequence(store, tmp_path / "run", config, progress=False,
                            on_epoch_end=lambda epoch, row: epochs.append(epoch))
    assert isinstance(result, TrainResult) and epochs == [1] and result.run_dir == tmp_path / "run"
    assert result["best_epoch"] == result.best_epoch == 1 and np.isfinite(result.get("best_score"))
    assert "stop_reason" in result and result.history[0]["epoch"] == 1
    with pytest.raises(TypeError, match="FrameTrainConfig"):
        train_frames(tmp_path / "data.npz", tmp_path / "frames", config)  # a sequence config
