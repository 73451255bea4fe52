"""Feature extraction over a hand-made ABAW tree: exact features, masks, missing crops, resume, CLI.

(A crop that exists but cannot be read fails its video: tests/test_reliability_stores.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from affectseq.data.abaw import AbawDataset
from affectseq.data.frames import read_image_rgb
from affectseq.models.factory import save_frame_model
from affectseq.features.encoders import create_encoder
from affectseq.features.extract import extract_features
from affectseq.features.frame_model import FrameModel
from affectseq.features.preprocess import preprocess_faces
from affectseq.features.store import FeatureStore

EXPR8 = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
# video -> (EXPR rows per split, 1-based crop numbers, crop number written as garbage bytes when corrupt=True,
# else deleted after the dataset is scanned: a listed crop whose file is gone)
EXPR_ROWS = {("Train_Set", "vidA"): [0, 4, 4, 1, 2, -1, 3, 7], ("Validation_Set", "vidC"): [5, 5, 6, 0, 0],
             ("Train_Set", "vidB"): [1, 1, 1]}
CROPS = {"vidA": [1, 2, 3, 5, 6, 8], "vidB": [], "vidC": [1, 2, 3, 4, 5]}
CORRUPT = ("vidA", 5)  # frame_idx 4


def build_tree(root: Path, corrupt: bool = False) -> Path:
    ann = root / "6th_ABAW_Annotations"
    for (split, vid), rows in EXPR_ROWS.items():
        folder = ann / "EXPR_Recognition_Challenge" / split
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{vid}.txt").write_text("\n".join([EXPR8, *map(str, rows)]) + "\n")
    va = ann / "VA_Estimation_Challenge" / "Train_Set"
    va.mkdir(parents=True, exist_ok=True)
    (va / "vidA.txt").write_text("valence,arousal\n" + "\n".join(f"{i / 10},{-i / 10}" for i in range(8)) + "\n")
    rng = np.random.default_rng(0)
    for vid, numbers in CROPS.items():
        folder = root / "cropped_aligned" / vid
        folder.mkdir(parents=True, exist_ok=True)
        for i in numbers:
            path = folder / f"{i:05d}.jpg"
            if (vid, i) == CORRUPT and corrupt:
                path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
            else:
                Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path, quality=95)
    return root


class Scanned:
    """A dataset's video lists taken once, so a crop can disappear after the listing."""

    def __init__(self, data):
        self.root, self.tasks, self.expr_classes = data.root, data.tasks, data.expr_classes
        self._videos = {(t, s): data.videos(t, s) for t in data.tasks for s in data.splits(t)}

    def splits(self, task):
        return tuple(s for t, s in self._videos if t == task)

    def videos(self, task, split):
        return self._videos[(task, split)]


@pytest.fixture()
def frame_model():
    torch.manual_seed(0)
    return FrameModel(create_encoder("paper_cnn"), tasks=("expr",), expr_classes=EXPR8.split(",")).eval()


class CountingModel(torch.nn.Module):
    """Wraps a frame model; counts encoded frames and can fail on a chosen call (a killed run)."""

    def __init__(self, inner, fail_on_call=None):
        super().__init__()
        self.inner, self.calls, self.frames, self.fail_on_call = inner, 0, 0, fail_on_call
        self.spec = inner.spec

    def forward_features(self, x):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("killed")
        self.frames += len(x)
        return self.inner.forward_features(x)


def test_features_labels_and_masks_are_exact(tmp_path, frame_model):
    data = Scanned(AbawDataset(build_tree(tmp_path / "data")))
    (tmp_path / "data" / "cropped_aligned" / CORRUPT[0] / f"{CORRUPT[1]:05d}.jpg").unlink()  # gone after the scan
    report = extract_features(data, frame_model, tmp_path / "store", batch_size=4, num_workers=0, device="cpu",
                              progress=False)
    assert (report.n_videos, report.n_written, report.n_frames_encoded, report.n_missing) == (3, 3, 10, 1)
    assert report.n_corrupt == 0 and not report.failed
    store = FeatureStore(tmp_path / "store")
    assert store.feature_dim == 300 and store.encoder["name"] == "paper_cnn"
    assert store.expr_classes == tuple(EXPR8.split(","))
    assert store.video_ids("expr", "train") == ["vidA", "vidB"] and store.video_ids("va", "train") == ["vidA"]
    assert store.video_ids("expr", "validation") == ["vidC"]

    labels = store.labels("vidA")
    np.testing.assert_array_equal(labels["has_face"], [1, 1, 1, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(labels["feature_valid"], [1, 1, 1, 0, 0, 1, 0, 1])  # frame 4: crop file gone
    np.testing.assert_array_equal(labels["expr"], EXPR_ROWS[("Train_Set", "vidA")])
    np.testing.assert_allclose(labels["va"][:, 0], np.arange(8) / 10, atol=1e-6)
    assert store.entries["vidA"].n_missing == 1
    feats = store.features("vidA")
    assert not np.any(feats[[3, 4, 6]])
    crop = read_image_rgb(tmp_path / "data" / "cropped_aligned" / "vidA" / "00002.jpg")
    with torch.no_grad():
        want = frame_model.forward_features(preprocess_faces(frame_model.spec, crop, framing="abaw112"))[0]
    np.testing.assert_allclose(feats[1].astype(np.float32), want.numpy(), rtol=2e-3, atol=2e-3)
    assert not store.labels("vidB")["feature_valid"].any() and store.n_frames("vidB") == 3


def test_killed_run_leaves_finished_videos_and_resume_does_only_the_rest(tmp_path, frame_model):
    data = AbawDataset(build_tree(tmp_path / "data"))
    # Batches of 2 crops: vidA's 6 crops are calls 1-3, vidC's start at call 4 (vidB has no crop).
    dying = CountingModel(frame_model, fail_on_call=4)
    with pytest.raises(RuntimeError, match="killed"):
        extract_features(data, dying, tmp_path / "store", batch_size=2, num_workers=0, device="cpu", progress=False)
    videos = tmp_path / "store" / "videos"
    assert sorted(p.name for p in videos.iterdir() if p.suffix == ".json") == ["vidA.json", "vidB.json"]
    assert not [p for p in videos.iterdir() if p.name.endswith(".tmp")]
    (videos / ".vidC.features.npy.abc123.tmp").write_bytes(b"half")  # what SIGKILL mid-write leaves

    again = CountingModel(frame_model)
    report = extract_features(data, again, tmp_path / "store", batch_size=2, num_workers=0, device="cpu",
                              progress=False)
    assert (report.n_skipped, report.n_written, again.frames) == (2, 1, 5)  # only vidC's 5 crops
    assert not [p for p in videos.iterdir() if p.name.endswith(".tmp")]
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert sorted(manifest["videos"]) == ["vidA", "vidB", "vidC"]


def test_worker_processes_give_the_same_store(tmp_path, frame_model):
    data = AbawDataset(build_tree(tmp_path / "data"))
    extract_features(data, frame_model, tmp_path / "a", batch_size=3, num_workers=0, device="cpu", progress=False)
    extract_features(data, frame_model, tmp_path / "b", batch_size=3, num_workers=2, device="cpu", progress=False)
    a, b = FeatureStore(tmp_path / "a"), FeatureStore(tmp_path / "b")
    for vid in a.video_ids():
        np.testing.assert_array_equal(a.features(vid), b.features(vid))


def test_cli_extract_then_train_sequence(tmp_path, frame_model, capsys):
    from affectseq.cli import main

    data = build_tree(tmp_path / "data")
    ckpt = save_frame_model(tmp_path / "frame.safetensors", frame_model)
    store_dir, run = tmp_path / "store", tmp_path / "run"
    assert main(["extract", "--data", str(data), "--checkpoint", str(ckpt), "--out", str(store_dir),
                 "--workers", "0", "--device", "cpu"]) == 0
    assert "3 videos written" in capsys.readouterr().out
    store = FeatureStore(store_dir)
    assert store.manifest["checkpoint_path"] == str(ckpt.resolve()) and len(store.checkpoint_sha256) == 64

    assert main(["train", "sequence", "--store", str(store_dir), "--task", "expr", "--out", str(run),
                 "window=2", "epochs=2", "model.hidden_sizes=[4]"]) == 0
    for name in ("config.yaml", "run.json", "history.csv", "checkpoint_last.pt", "checkpoint_best.safetensors",
                 "val_predictions.npz"):
        assert (run / name).is_file(), name
    pred = np.load(run / "val_predictions.npz")
    assert list(pred["frame_idx"]) == [2, 3, 4] and set(pred["video_id"]) == {"vidC"}
    # A typo in an override is one clear error line, exit code 1.
    assert main(["train", "sequence", "--store", str(store_dir), "--out", str(tmp_path / "x"), "windw=3"]) == 1
    assert "unknown option(s) windw" in capsys.readouterr().err
