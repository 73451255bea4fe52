"""Clip-level training and evaluation on synthetic clip stores with known answers.

A clip's class is the *direction* of a change over the clip (a face going from neutral to
an expression, or back): feature 0 rises in "onset" clips and falls in "offset" clips, from
a random level. One frame shows a level, never the direction, so a per-frame view is at
chance; a model over frames sampled across the clip is not.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from affectseq import metrics as M
from affectseq.config import load_config
from affectseq.errors import InputError
from affectseq.evaluation.clips import clip_metrics, clip_predictions
from affectseq.evaluation.predictions import Predictions, load_predictions
from affectseq.evaluation.report import evaluate_run
from affectseq.features.store import FeatureStore, make_labels
from affectseq.features.store_writer import StoreWriter
from affectseq.models.bundle import load_sequence_bundle
from affectseq.sequences.clips import ClipDataset, ClipSpec, clip_positions, clip_targets
from affectseq.training.sequence import SequenceTrainConfig, train_sequence

CLASSES = ("offset", "onset")  # a study's own class names, sorted, as a clip dataset gives them


def write_clip_store(root, n_train=48, n_val=16, min_frames=8, max_frames=40, seed=0, label_level="clip",
                     feature_dim=4, face_rate=0.85, val_name="validation"):
    rng = np.random.default_rng(seed)
    writer = StoreWriter(root, feature_dim=feature_dim, encoder={"name": "synthetic"}, tasks=("expr",),
                         expr_classes=CLASSES, label_level=label_level)
    for i in range(n_train + n_val):
        n = int(rng.integers(min_frames, max_frames + 1))
        label = i % 2
        ramp = np.linspace(0, 1, n) if label == 1 else np.linspace(1, 0, n)
        feats = rng.normal(0, 0.05, (n, feature_dim))
        feats[:, 0] += ramp + rng.uniform(-0.5, 0.5)  # a random level: one frame cannot tell the direction
        valid = rng.random(n) < face_rate
        valid[[0, -1]] = True
        feats[~valid] = 7.0  # whatever a no-face row holds must not matter
        labels = make_labels(n, feature_valid=valid, has_face=valid, expr=np.full(n, label))
        split = "train" if i < n_train else val_name
        writer.write_video(f"clip{i:03d}", feats.astype(np.float16), labels, {"expr": split}, fps=25.0)
    return root


SMALL = {"model": {"hidden_sizes": [16]}, "epochs": 12, "batch_size": 8, "lr": 0.01, "patience": 12}


@pytest.fixture(scope="module")
def clip_store(tmp_path_factory):
    return write_clip_store(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def clip_run(clip_store, tmp_path_factory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("run") / "gru"
    train_sequence(clip_store, run, load_config(SequenceTrainConfig, overrides=SMALL), progress=False)
    return run


def test_positions_are_segment_centres_and_repeat_frames_of_short_clips():
    assert clip_positions(32, 16).tolist() == list(range(1, 32, 2))
    assert clip_positions(8, 16).tolist() == [k // 2 for k in range(16)]  # each frame twice
    assert clip_positions(1, 16).tolist() == [0] * 16
    assert clip_positions(100, 4).tolist() == [12, 37, 62, 87]
    assert len(clip_positions(0, 16)) == 0


def test_clip_sample_masks_frames_without_a_face_and_targets_the_clip_label(clip_store):
    store = FeatureStore(clip_store)
    assert store.label_level == "clip"
    ds = ClipDataset(store, store.video_ids("expr", "train"), ClipSpec(frames=16), split="train")
    assert len(ds) == 48 and not ds.skipped
    sample = ds[3]
    labels = store.labels(ds.video_ids[3])
    positions = clip_positions(len(labels), 16)
    assert sample["features"].shape == (16, 4) and sample["features"].dtype == np.float16
    np.testing.assert_array_equal(sample["mask"], labels["feature_valid"][positions])
    assert np.all(sample["features"][~sample["mask"]] == 0)  # the 7.0 in no-face rows never reaches the model
    assert int(sample["expr"]) == 1 and int(sample["target_frame_idx"]) == -1
    np.testing.assert_array_equal(sample["frame_idx"], positions)


def test_clip_targets_majority_mean_and_unannotated():
    labels = make_labels(5, expr=np.array([2, 2, -1, 3, 2]), va=np.array([[0.2, 0.4]] * 4 + [[np.nan, np.nan]]))
    t = clip_targets(labels, ("expr", "va"))
    assert int(t["expr"]) == 2
    np.testing.assert_allclose(t["va"], [0.2, 0.4], rtol=1e-6)
    assert int(clip_targets(labels, ("va",))["expr"]) == -1  # a task not trained is unannotated


def test_train_sequence_defaults_to_one_label_per_clip_on_a_clip_store(clip_run):
    pred = np.load(clip_run / "val_predictions.npz")
    assert len(pred["video_id"]) == 16 and len(set(pred["video_id"])) == 16  # one row per clip
    assert str(pred["label_level"]) == "clip" and (pred["frame_idx"] == -1).all()
    acc = float((pred["expr_prob"].argmax(1) == pred["expr_true"]).mean())
    assert acc >= 0.85, acc  # chance is 0.5: the direction over the clip is learnt
    summary = json.loads((clip_run / "train_summary.json").read_text())
    assert summary["samples"]["mode"] == "clip" and summary["samples"]["length"] == 16
    assert "val_expr_uar" in summary["val_metrics"]  # clips are selected on UAR
    bundle = load_sequence_bundle(clip_run)
    assert bundle.mode == "clip" and bundle.window == 16 and bundle.expr_classes == CLASSES
    assert bundle.temporal_model.config.mode == "clip"  # heads on the last step holding a frame


def test_evaluate_reports_uar_and_war_over_clips(clip_run, tmp_path):
    result = evaluate_run(clip_run, tmp_path / "eval")
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["level"] == "clip" and saved["clip"]["n_clips"] == 16
    preds = load_predictions(clip_run / "val_predictions.npz")
    true, pred = preds.expr_true, preds.expr_pred
    assert saved["war"] == pytest.approx(np.mean(true == pred))
    assert saved["uar"] == pytest.approx(np.mean([np.mean(pred[true == c] == c) for c in (0, 1)]))
    lo, hi = saved["clip"]["ci95"]["uar"]
    assert lo <= saved["uar"] <= hi
    assert set(saved["clip"]["per_class_recall"]) == set(CLASSES)
    assert np.asarray(saved["clip"]["confusion_counts"]).sum() == 16
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "UAR" in report and (tmp_path / "eval" / result.files["clip_confusion_counts"]).is_file()


def test_frame_predictions_on_clip_data_are_averaged_over_each_clips_faces():
    # Clip a: frames say [0.6, 0.4], [0.2, 0.8], NaN (no face) -> mean [0.4, 0.6] -> class 1 (true 1).
    # Clip b: one frame [0.9, 0.1] -> class 0 (true 1). Clip c: only NaN -> no prediction.
    prob = np.array([[0.6, 0.4], [0.2, 0.8], [np.nan, np.nan], [0.9, 0.1], [np.nan, np.nan]])
    preds = Predictions(video_id=np.array(["a", "a", "a", "b", "c"]), frame_idx=np.array([0, 1, 2, 0, 0]),
                        expr_true=np.array([1, 1, 1, 1, 0]), expr_prob=prob, expr_classes=("x", "y"),
                        label_level="clip")
    clips = clip_predictions(preds)
    assert clips.video_id.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(clips.expr_prob[0], [0.4, 0.6])
    scores = clip_metrics(preds, bootstrap=50)
    assert scores["n_clips"] == 2 and scores["n_clips_without_prediction"] == 1
    assert scores["war"] == 0.5 and scores["uar"] == 0.5  # only class y is present: its recall is 1/2
    assert scores["aggregation"].startswith("mean of frame probabilities")


def test_uar_is_the_mean_recall_over_the_classes_present():
    true = np.array([0, 0, 0, 0, 1, 2, -1])
    pred = np.array([0, 0, 0, 0, 0, 2, 1])
    assert M.uar(true, pred, 4) == pytest.approx((1 + 0 + 1) / 3)
    assert M.war(true, pred) == pytest.approx(5 / 6)
    assert np.isnan(M.uar(np.array([-1]), np.array([0]), 3))


def test_short_per_frame_videos_train_on_padded_windows_and_say_so(tmp_path, caplog):
    root = write_clip_store(tmp_path / "short", n_train=8, n_val=4, min_frames=24, max_frames=60,
                            label_level="frame")  # per-frame labels, every video shorter than 100 frames
    cfg = load_config(SequenceTrainConfig, overrides={**SMALL, "epochs": 1})
    with caplog.at_level(logging.WARNING, logger="affectseq.training.sequence_data"):
        train_sequence(root, tmp_path / "run", cfg, progress=False)
    assert "left-padded windows" in caplog.text and "pad_start=true" in caplog.text
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["samples"] == {"mode": "seq2one", "length": 100, "pad_start": True,
                                  "notes": summary["samples"]["notes"]}
    pred = np.load(tmp_path / "run" / "val_predictions.npz")
    assert str(pred["label_level"]) == "frame" and pred["frame_idx"].min() >= 1


def test_short_videos_with_padding_refused_fail_naming_the_cause(tmp_path):
    root = write_clip_store(tmp_path / "short", n_train=4, n_val=2, min_frames=20, max_frames=30,
                            label_level="frame")
    cfg = load_config(SequenceTrainConfig, overrides={**SMALL, "epochs": 1, "pad_start": False})
    with pytest.raises(InputError, match=r"no windows to train on \(0 train, 0 validation\).*pad_start=true"):
        train_sequence(root, tmp_path / "run", cfg, progress=False)


def test_old_stores_without_label_level_read_as_per_frame(tmp_path):
    root = write_clip_store(tmp_path / "s", n_train=2, n_val=1, label_level="frame")
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["label_level"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert FeatureStore(root).label_level == "frame"
    manifest["label_level"] = "scene"
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="label_level"):
        FeatureStore(root)


def test_a_train_test_benchmark_store_holds_out_validation_and_scores_the_test_split(tmp_path):
    # DFEW, FERV39k and MAFW publish train/test only: validation comes from training clips, test stays unseen.
    root = write_clip_store(tmp_path / "bench", n_train=30, n_val=10, val_name="test")
    cfg = load_config(SequenceTrainConfig, overrides={**SMALL, "epochs": 2})
    train_sequence(root, tmp_path / "run", cfg, progress=False)
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert "3 of 30 training videos" in summary["samples"]["notes"][0]
    val = np.load(tmp_path / "run" / "val_predictions.npz")
    test = np.load(tmp_path / "run" / "test_predictions.npz")
    test_ids = {f"clip{i:03d}" for i in range(30, 40)}
    assert len(val["video_id"]) == 3 and not set(val["video_id"]) & test_ids
    assert set(test["video_id"]) == test_ids and str(test["label_level"]) == "clip"
    assert summary["test_split"] == "test" and "expr_uar" in summary["test_metrics"]
    metrics = evaluate_run(tmp_path / "run", tmp_path / "eval", split="test").metrics
    assert metrics["clip"]["n_clips"] == 10


def test_paper_study_rows_on_a_clip_dataset_are_scored_per_clip():
    from affectseq.experiments.alignment import align_predictions, score_aligned
    from affectseq.experiments.paper import at_clip_level

    # CNN: frame rows of clips a (2 faces) and b (1 face); RNN: one row per clip. Own classes: no ABAW score.
    cnn = Predictions(video_id=np.array(["a", "a", "b"]), frame_idx=np.array([0, 3, 1]),
                      expr_true=np.array([1, 1, 0]), expr_prob=np.array([[0.9, 0.1], [0.0, 1.0], [0.2, 0.8]]),
                      expr_classes=CLASSES, label_level="clip")
    rnn = Predictions(video_id=np.array(["b", "a"]), frame_idx=np.array([-1, -1]), expr_true=np.array([0, 1]),
                      expr_prob=np.array([[0.7, 0.3], [0.4, 0.6]]), expr_classes=CLASSES, label_level="clip")
    rows, clip_level = at_clip_level({"CNN": cnn, "CNN+RNN": rnn})
    assert clip_level
    table = score_aligned(align_predictions(rows, "expr"), "expr").set_index("row")
    assert table.loc["CNN", "accuracy"] == 0.5 and table.loc["CNN+RNN", "accuracy"] == 1.0  # a: [0.45, 0.55]
    assert table.loc["CNN", "uar"] == 0.5 and np.isnan(table.loc["CNN", "abaw_score"])
    frame_rows = {"CNN": Predictions(video_id=cnn.video_id, frame_idx=cnn.frame_idx, expr_true=cnn.expr_true,
                                     expr_prob=cnn.expr_prob)}
    assert at_clip_level(frame_rows) == (frame_rows, False)  # per-frame data: untouched
