"""The one training engine's run-folder contract, the same for frame and sequence runs: history columns,
refusing a folder that holds a run, resume that refuses a changed config unless told, early stopping."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from affectseq.config import load_config
from affectseq.errors import ConfigError, InputError
from affectseq.features.store_writer import write_random_store
from affectseq.training.fit import check_resume_config, restore_state
from affectseq.training.frames import FrameTrainConfig, train_frames
from affectseq.training.sequence import SequenceTrainConfig, train_sequence

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEQUENCE = {"task": "multi", "window": 6, "model": {"hidden_sizes": [8]}, "epochs": 2, "batch_size": 16,
            "lr": 0.01, "max_windows_per_epoch": 64, "max_val_windows": 64, "seed": 0}
FRAMES = {"task": "expr", "encoder": {"name": "test_convnext", "input_size": 32}, "augment": {"enabled": False},
          "epochs": 1, "batch_size": 16, "limit_train": 32, "limit_val": 16, "test_split": None, "threads": 1}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return write_random_store(tmp_path_factory.mktemp("fit") / "store", n_rows=600, feature_dim=8,
                              video_frames=100, seed=3)


def _columns(run_dir: Path) -> list[str]:
    with open(run_dir / "history.csv", newline="") as fh:
        return next(csv.reader(fh))


def test_frame_and_sequence_histories_follow_one_column_rule(store, fer2013_path, tmp_path) -> None:
    train_sequence(store, tmp_path / "seq", load_config(SequenceTrainConfig, overrides=SEQUENCE), progress=False)
    train_frames(fer2013_path, tmp_path / "frames", load_config(FrameTrainConfig, overrides=FRAMES), progress=False)
    for run, items, metrics in (("seq", "windows", ["val_expr_accuracy", "val_va_mean_ccc"]),
                                ("frames", "images", ["val_expr_accuracy", "val_expr_macro_f1"])):
        columns = _columns(tmp_path / run)
        assert columns[:3] == ["epoch", "train_loss", "val_loss"]
        assert set(metrics) <= set(columns)
        assert columns[-4:] == ["val_score", "lr", f"train_{items}_per_sec", "seconds"]
        # Every column but epoch/lr/seconds says whether it is measured on training or validation data.
        assert all(c.startswith(("train_", "val_")) for c in columns if c not in ("epoch", "lr", "seconds"))
        for name in ("config.yaml", "run.json", "checkpoint_last.pt", "checkpoint_best.safetensors",
                     "val_predictions.npz", "train_summary.json"):
            assert (tmp_path / run / name).is_file(), (run, name)


def test_resume_refuses_a_changed_config_unless_told(store, tmp_path) -> None:
    config = load_config(SequenceTrainConfig, overrides=SEQUENCE)
    run = tmp_path / "run"
    first = train_sequence(store, run, config, progress=False)
    with pytest.raises(InputError, match="--resume"):
        train_sequence(store, run, config, progress=False)
    changed = load_config(SequenceTrainConfig, overrides={**SEQUENCE, "lr": 0.02, "epochs": 3})
    with pytest.raises(ConfigError, match=r"different configuration \(lr\)"):
        train_sequence(store, run, changed, resume=True, progress=False)
    longer = load_config(SequenceTrainConfig, overrides={**SEQUENCE, "epochs": 3})  # more epochs: allowed
    resumed = train_sequence(store, run, longer, resume=True, progress=False)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    assert resumed.history[:2] == first.history[:2]
    told = train_sequence(store, run, load_config(SequenceTrainConfig, overrides={**SEQUENCE, "lr": 0.02,
                                                                                   "epochs": 4}),
                          resume=True, progress=False, allow_config_change=True)
    assert len(told.history) == 4


def test_early_stopping_counts_epochs_without_a_better_score(store, tmp_path) -> None:
    # lr 0: the score never changes after epoch 1, so patience 2 stops after epoch 3.
    config = load_config(SequenceTrainConfig, overrides={**SEQUENCE, "lr": 0.0, "epochs": 10, "patience": 2})
    result = train_sequence(store, tmp_path / "run", config, progress=False)
    assert (result.best_epoch, len(result.history)) == (1, 3)
    never = load_config(SequenceTrainConfig, overrides={**SEQUENCE, "lr": 0.0, "epochs": 4, "patience": 0})
    assert len(train_sequence(store, tmp_path / "never", never, progress=False).history) == 4


def test_resume_rule_and_old_sequence_state() -> None:
    saved = {"epochs": 3, "lr": 0.1, "seed": 0}
    check_resume_config(saved, {"epochs": 9, "lr": 0.1, "seed": 0, "new_option": 1}, False, Path("last.pt"))
    with pytest.raises(ConfigError, match="seed"):
        check_resume_config(saved, {"epochs": 3, "lr": 0.1, "seed": 1}, False, Path("last.pt"))
    check_resume_config(saved, {"epochs": 3, "lr": 0.1, "seed": 1}, True, Path("last.pt"))
    # The sequence loop before the one engine saved its early-stopping count as bad_epochs.
    state = restore_state({"epoch": 4, "best_score": 0.5, "best_epoch": 2, "bad_epochs": 2, "history": []})
    assert (state.epoch, state.best_epoch, state.epochs_since_best) == (4, 2, 2)


def test_scale_train_sequence_resume_follows_the_same_rule(store, tmp_path, capsys) -> None:
    """``affectseq scale train-sequence`` takes ``--allow-config-change`` like ``train sequence`` (it had none)."""
    from affectseq.cli import main

    run = tmp_path / "run"
    base = ["scale", "train-sequence", "--store", str(store), "--task", "multi", "--out", str(run), "--nproc", "1"]
    sets = ["window=6", "model.hidden_sizes=[8]", "batch_size=16", "max_windows_per_epoch=64", "max_val_windows=64"]
    assert main([*base, *sets, "epochs=1"]) == 0
    assert main([*base, "--resume", *sets, "epochs=2", "lr=0.02"]) != 0
    assert "different configuration (lr)" in capsys.readouterr().err
    assert main([*base, "--resume", "--allow-config-change", *sets, "epochs=2", "lr=0.02"]) == 0
    with open(run / "history.csv", newline="") as fh:
        assert [row["epoch"] for row in csv.DictReader(fh)] == ["1", "2"]
