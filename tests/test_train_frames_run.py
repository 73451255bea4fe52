"""A tiny real frame-training run on FER2013: run-dir contract, learning, resume, determinism."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from affectseq import metrics
from affectseq.config import load_config
from affectseq.models.factory import load_frame_model
from affectseq.features.encoders import encoder_from_spec
from affectseq.features.frame_model import FrameModel
from affectseq.features.preprocess import preprocess_faces
from affectseq.training.frame_data import resolve_frame_data
from affectseq.errors import InputError
from affectseq.training.frames import FrameTrainConfig, train_frames

TINY = {
    "task": "expr", "encoder": {"name": "resnet18", "input_size": 48},
    "augment": {"enabled": False}, "epochs": 3, "batch_size": 32, "lr": 0.001, "weight_decay": 0.0,
    "warmup_epochs": 0.0, "limit_train": 256, "limit_val": 128, "limit_test": 64, "select_metric": "expr_accuracy",
    "threads": 1, "seed": 3,
}


def _history(run_dir) -> list[dict[str, str]]:
    with open(run_dir / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, fer2013_path):
    run_dir = tmp_path_factory.mktemp("frames") / "run"
    config = load_config(FrameTrainConfig, overrides=TINY)
    summary = train_frames(fer2013_path, run_dir, config)
    return run_dir, config, summary


def test_run_directory_contract(tiny_run) -> None:
    run_dir, _, summary = tiny_run
    for name in ("config.yaml", "run.json", "history.csv", "checkpoint_last.pt", "checkpoint_best.safetensors",
                 "val_predictions.npz", "test_predictions.npz", "test_metrics.json", "train_summary.json"):
        assert (run_dir / name).is_file(), name
    rows = _history(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_expr_accuracy", "val_expr_macro_f1", "seconds"} <= set(rows[0])
    with np.load(run_dir / "val_predictions.npz") as pred:
        assert pred["expr_prob"].shape == (128, 7) and pred["expr_true"].shape == (128,)
        assert set(pred["video_id"]) == {"fer2013/validation"}
        assert np.allclose(pred["expr_prob"].sum(1), 1, atol=1e-4)
        # val_predictions come from the best epoch: their accuracy is the best row's.
        best = max(float(r["val_expr_accuracy"]) for r in rows)
        assert abs(metrics.accuracy(pred["expr_true"], pred["expr_prob"].argmax(1)) - best) < 1e-9
    test = json.loads((run_dir / "test_metrics.json").read_text())
    assert test["test_set"] == "fer2013/test" and test["n"] == 64
    assert summary["best_epoch"] in (1, 2, 3)


def test_training_learns_its_train_subset(tiny_run, fer2013_path) -> None:
    """Three short epochs lower the loss on the frames trained on (vs the same seeded network untrained)."""
    run_dir, config, _ = tiny_run
    rows = _history(run_dir)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    data = resolve_frame_data(fer2013_path, "expr", val_split="validation", test_split=None, seed=config.seed,
                              limit_train=config.limit_train)
    frame_set, idx = data.train
    trained = load_frame_model(run_dir)
    trained.load_state_dict(torch.load(run_dir / "checkpoint_last.pt", weights_only=False)["model"])
    torch.manual_seed(config.seed)
    untrained = FrameModel(encoder_from_spec(trained.spec), ["expr"]).eval()
    faces = preprocess_faces(trained.spec, np.repeat(frame_set.images[idx][..., None], 3, axis=3))
    y = torch.from_numpy(frame_set.expr[idx])
    with torch.no_grad():
        logits = trained(faces)["expr"]
        loss = float(torch.nn.functional.cross_entropy(logits, y))
        loss_untrained = float(torch.nn.functional.cross_entropy(untrained(faces)["expr"], y))
    assert loss < loss_untrained - 0.1
    assert metrics.accuracy(y.numpy(), logits.argmax(1).numpy()) > 1 / 7 + 0.1  # well above chance


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_metrics(tiny_run, tmp_path, fer2013_path) -> None:
    """Stopped after epoch 1 and resumed, a run ends exactly like the uninterrupted one (same seed, CPU)."""
    run_dir, config, _ = tiny_run
    def interrupt(epoch, row) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_frames(fer2013_path, tmp_path / "a", config, on_epoch_end=interrupt)
    assert len(_history(tmp_path / "a")) == 1
    with pytest.raises(InputError, match="--resume"):
        train_frames(fer2013_path, tmp_path / "a", config)
    train_frames(fer2013_path, tmp_path / "a", config, resume=True)
    resumed, reference = _history(tmp_path / "a"), _history(run_dir)
    assert [r["epoch"] for r in resumed] == ["1", "2", "3"]
    for a, b in zip(resumed, reference):
        assert (a["train_loss"], a["val_loss"], a["val_expr_accuracy"]) == (b["train_loss"], b["val_loss"],
                                                                    b["val_expr_accuracy"])
