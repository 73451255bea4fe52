"""Sequence training on a synthetic store whose labels need time: GRU beats a per-frame view; resume is exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from affectseq.config import load_config
from affectseq.features.store import make_labels
from affectseq.features.store_writer import StoreWriter
from affectseq.models.bundle import load_sequence_bundle
from affectseq.training.sequence import SequenceTrainConfig, train_sequence


def write_trend_store(root, n_videos=10, n_frames=160, seed=0, frame_checkpoint=None, feature_dim=4):
    """Each video: a noisy sine of random period/phase. EXPR label of frame t = 1 if the sine rises at t,
    else 0 (VA = the sine's slope, arousal its value). One frame shows the value, never its direction:
    a per-frame model is at chance on EXPR; a model that sees the frames before t is not."""
    rng = np.random.default_rng(seed)
    writer = StoreWriter(root, feature_dim=feature_dim, encoder={"name": "synthetic"}, tasks=("expr", "va"),
                         expr_classes=("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise"),
                         checkpoint_path=frame_checkpoint,
                         checkpoint_sha256=None)
    for v in range(n_videos):
        t = np.arange(n_frames)
        period, phase = rng.uniform(20, 40), rng.uniform(0, 2 * np.pi)
        angle = 2 * np.pi * t / period + phase
        value, slope = np.sin(angle), np.cos(angle)
        feats = rng.normal(0, 0.05, (n_frames, feature_dim))
        feats[:, 0] += value
        valid = rng.random(n_frames) > 0.1  # 10% gaps
        feats[~valid] = 0
        labels = make_labels(n_frames, feature_valid=valid, has_face=valid, expr=(slope > 0).astype(int),
                             va=np.stack([slope, value], 1).astype(np.float32))
        split = "validation" if v >= n_videos - 3 else "train"
        writer.write_video(f"vid{v:02d}", feats.astype(np.float16), labels, {"expr": split, "va": split})
    return root


def _accuracy(run_dir) -> float:
    pred = np.load(run_dir / "val_predictions.npz")
    keep = pred["expr_true"] >= 0
    return float((pred["expr_prob"][keep].argmax(1) == pred["expr_true"][keep]).mean())


FAST = dict(model={"hidden_sizes": [16]}, epochs=8, batch_size=32, lr=0.01, patience=8, max_windows_per_epoch=512)


@pytest.fixture(scope="module")
def trend_store(tmp_path_factory):
    return write_trend_store(tmp_path_factory.mktemp("trend"))


def test_gru_learns_a_temporal_trend_a_single_frame_cannot(trend_store, tmp_path):
    torch.set_num_threads(1)
    gru = load_config(SequenceTrainConfig, overrides={**FAST, "window": 12, "task": "expr"})
    result = train_sequence(trend_store, tmp_path / "gru", gru, progress=False)
    one = load_config(SequenceTrainConfig, overrides={**FAST, "window": 1, "task": "expr"})
    train_sequence(trend_store, tmp_path / "one", one, progress=False)
    acc_gru, acc_one = _accuracy(tmp_path / "gru"), _accuracy(tmp_path / "one")
    assert acc_gru > 0.85, acc_gru
    assert acc_one < 0.7, acc_one  # one frame: the value, never the direction -> near chance (0.5)
    history = pd.read_csv(tmp_path / "gru" / "history.csv")
    assert list(history["epoch"]) == list(range(1, 9))  # patience 8: no early stop
    assert {"train_loss", "val_loss", "val_expr_accuracy", "val_score", "seconds"} <= set(history.columns)
    assert result.best_epoch == int(history["val_score"].idxmax()) + 1
    pred = np.load(tmp_path / "gru" / "val_predictions.npz")
    assert set(pred["video_id"]) == {"vid07", "vid08", "vid09"} and pred["frame_idx"].min() >= 12
    assert list(pred["expr_classes"])[0] == "Neutral"


def test_seq2seq_multitask_trains_and_predicts_every_frame(trend_store, tmp_path):
    cfg = load_config(SequenceTrainConfig, overrides={**FAST, "epochs": 6, "window": 20, "stride": 2, "task": "multi",
                                                       "mode": "seq2seq"})
    train_sequence(trend_store, tmp_path / "s2s", cfg, progress=False)
    pred = np.load(tmp_path / "s2s" / "val_predictions.npz")
    assert len(pred["frame_idx"]) == 3 * 160  # every frame of the 3 validation videos, once
    assert _accuracy(tmp_path / "s2s") > 0.75
    history = pd.read_csv(tmp_path / "s2s" / "history.csv")
    assert history["val_va_mean_ccc"].max() > 0.5


def test_same_seed_same_metrics_and_resume_equals_uninterrupted(trend_store, tmp_path):
    cfg = load_config(SequenceTrainConfig, overrides={**FAST, "epochs": 3, "window": 8, "max_windows_per_epoch": 128,
                                                       "model": {"hidden_sizes": [8], "dropout": 0.2}})
    train_sequence(trend_store, tmp_path / "a", cfg, progress=False)
    train_sequence(trend_store, tmp_path / "b", cfg, progress=False)

    def stop_after_1(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_sequence(trend_store, tmp_path / "c", cfg, progress=False, on_epoch_end=stop_after_1)
    assert len(pd.read_csv(tmp_path / "c" / "history.csv")) == 1
    train_sequence(trend_store, tmp_path / "c", cfg, progress=False, resume=True)

    timing = ["seconds", "train_windows_per_sec"]  # wall-clock columns; every other one must be equal
    hist = {k: pd.read_csv(tmp_path / k / "history.csv").drop(columns=timing) for k in "abc"}
    pd.testing.assert_frame_equal(hist["a"], hist["b"])
    pd.testing.assert_frame_equal(hist["a"], hist["c"])
    last = {k: torch.load(tmp_path / k / "checkpoint_last.pt", weights_only=False)["model"] for k in "ac"}
    for name, tensor in last["a"].items():
        torch.testing.assert_close(tensor, last["c"][name], rtol=0, atol=0)


def test_bundle_rebuilds_frame_and_temporal_models(tmp_path):
    from affectseq.models.factory import save_frame_model
    from affectseq.features.encoders import create_encoder
    from affectseq.features.frame_model import FrameModel

    torch.manual_seed(0)
    frame = FrameModel(create_encoder("paper_cnn"), tasks=("expr",)).eval()
    frame_path = save_frame_model(tmp_path / "frame.safetensors", frame)
    store = write_trend_store(tmp_path / "store", n_videos=5, n_frames=40, frame_checkpoint=str(frame_path),
                              feature_dim=300)
    cfg = load_config(SequenceTrainConfig, overrides={**FAST, "epochs": 1, "window": 10})
    train_sequence(store, tmp_path / "run", cfg, progress=False)
    frame_path.unlink()  # the run directory alone must be enough (the frame model is embedded)

    bundle = load_sequence_bundle(tmp_path / "run")
    assert bundle.mode == "seq2one" and bundle.window == 10 and bundle.tasks == ("expr",)
    x = torch.randn(2, 1, 96, 96)
    torch.testing.assert_close(bundle.frame_model.forward_features(x), frame.forward_features(x))
    out = bundle.temporal_model(torch.randn(1, 10, 300), torch.ones(1, 10, dtype=torch.bool))
    assert out["expr"].shape == (1, 7)


def test_window_balancing_and_its_misuse(trend_store, tmp_path):
    from affectseq.errors import ConfigError

    seen = []
    cfg = load_config(SequenceTrainConfig, overrides={**FAST, "epochs": 1, "window": 6, "balance": "downsample",
                                                       "max_windows_per_epoch": None})
    result = train_sequence(trend_store, tmp_path / "bal", cfg, progress=False,
                            on_epoch_end=lambda epoch, row: seen.append(row))
    assert result.best_epoch == 1 and np.isfinite(seen[0]["train_loss"])
    bad = load_config(SequenceTrainConfig, overrides={"mode": "seq2seq", "balance": "downsample"})
    with pytest.raises(ConfigError, match="seq2seq"):
        train_sequence(trend_store, tmp_path / "bad", bad, progress=False)
    wrong_task = load_config(SequenceTrainConfig, overrides={"task": "va", "balance": "oversample"})
    with pytest.raises(ConfigError, match="VA balancing supports only downsample"):
        train_sequence(trend_store, tmp_path / "bad2", wrong_task, progress=False)
