"""Frame training on a generated ABAW-layout dataset: VA with the CCC loss and multi-task heads."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from affectseq.config import load_config
from affectseq.data.synth import SynthConfig, generate
from affectseq.models.factory import load_frame_model
from affectseq.training.frames import FrameTrainConfig, train_frames

SMALL = {"encoder": {"name": "resnet18", "input_size": 48}, "epochs": 1, "batch_size": 32,
         "threads": 1, "test_split": None}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "affwild"
    cfg = load_config(SynthConfig, overrides={"n_videos": 4, "n_frames": 40, "seed": 5, "write_videos": False})
    generate(root, cfg, workers=1, show_progress=False)
    return root


@pytest.mark.parametrize("task, heads", [("va", ("va",)), ("multi", ("expr", "va", "au"))])
def test_abaw_frame_training_writes_contract_outputs(synth_root, tmp_path, task, heads) -> None:
    config = load_config(FrameTrainConfig, overrides={**SMALL, "task": task})
    summary = train_frames(synth_root, tmp_path / "run", config)
    assert summary["epochs_completed"] == 1
    model = load_frame_model(tmp_path / "run")
    assert model.tasks == heads and model.spec.framing == "abaw112"
    with open(tmp_path / "run" / "history.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert np.isfinite(float(row["val_va_mean_ccc"])) and np.isfinite(float(row["train_loss"]))
    with np.load(tmp_path / "run" / "val_predictions.npz") as pred:
        assert pred["va_pred"].shape == pred["va_true"].shape and pred["va_pred"].shape[1] == 2
        assert np.abs(pred["va_pred"]).max() <= 1.0
        # Items are named by their video and 0-based frame, as the run-dir contract asks.
        assert all("fer" not in v and v for v in pred["video_id"]) and pred["frame_idx"].min() >= 0
        if task == "multi":
            assert pred["expr_prob"].shape[1] == len(model.expr_classes) and pred["au_prob"].shape[1] == 13
