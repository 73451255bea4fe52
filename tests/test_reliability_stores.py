"""Extraction and stores: an unreadable crop fails its video (retried next run), never "no face";
a store whose manifest disagrees with its committed videos is refused by training (or warned about).
"""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from test_extract_abaw import CORRUPT, EXPR8, build_tree

from affectseq.data.abaw import AbawDataset
from affectseq.errors import InputError
from affectseq.features.encoders import create_encoder
from affectseq.features.extract import ExtractIncomplete, extract_features
from affectseq.features.frame_model import FrameModel
from affectseq.features.store import FeatureStore, make_labels
from affectseq.features.store_writer import StoreWriter, write_random_store
from affectseq.sequences.dataset import WindowDataset
from affectseq.sequences.windows import WindowSpec


@pytest.fixture()
def frame_model():
    torch.manual_seed(0)
    return FrameModel(create_encoder("paper_cnn"), tasks=("expr",), expr_classes=EXPR8.split(",")).eval()


def _extract(data_root: Path, model, store: Path, workers: int = 0):
    return extract_features(AbawDataset(data_root), model, store, batch_size=4, num_workers=workers, device="cpu",
                            progress=False)


def _markers(store: Path) -> list[str]:
    return sorted(p.stem for p in (store / "videos").glob("*.json"))


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_crop_fails_its_video_and_the_next_run_retries_it(tmp_path, frame_model, workers):
    data, store = build_tree(tmp_path / "data", corrupt=True), tmp_path / "store"
    with pytest.raises(ExtractIncomplete, match="1 of 3 videos not extracted") as err:
        _extract(data, frame_model, store, workers)
    assert "vidA" in str(err.value) and "00005.jpg" in str(err.value) and "\n" not in str(err.value)
    assert err.value.report.failed == ["vidA"] and err.value.report.n_written == 2
    assert _markers(store) == ["vidB", "vidC"]  # vidA is not committed as "no face"
    assert "not extracted" in (FeatureStore(store).incomplete() or "")

    good = tmp_path / "good.jpg"
    from PIL import Image

    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(good)
    crop = data / "cropped_aligned" / CORRUPT[0] / f"{CORRUPT[1]:05d}.jpg"
    crop.write_bytes(good.read_bytes())  # the dataset is repaired
    report = _extract(data, frame_model, store, workers)
    assert (report.n_skipped, report.n_written, report.failed) == (2, 1, [])
    restored = FeatureStore(store)
    assert restored.incomplete() is None and restored.labels("vidA")["feature_valid"][4]


def test_an_io_error_on_a_crop_fails_the_video(tmp_path, frame_model, monkeypatch):
    """Permissions, a vanished network mount...: any error reading an existing crop fails its video."""
    import affectseq.data.frames as frames

    data = build_tree(tmp_path / "data")
    real = frames.read_image_rgb

    def flaky(path):
        if str(path).endswith("vidC/00002.jpg"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(frames, "read_image_rgb", flaky)
    with pytest.raises(ExtractIncomplete, match="vidC"):
        _extract(data, frame_model, tmp_path / "store")
    assert _markers(tmp_path / "store") == ["vidA", "vidB"]


def _write(writer: StoreWriter, vid: str, split: str, update_manifest: bool) -> None:
    n = 12
    labels = make_labels(n, feature_valid=np.ones(n, bool), has_face=np.ones(n, bool), expr=np.arange(n) % 7)
    writer.write_video(vid, np.ones((n, 4), np.float16), labels, {"expr": split}, update_manifest=update_manifest)


def _aborted_parallel_store(root: Path) -> Path:
    """What an aborted Ray run leaves: markers written by tasks, manifest from before they ran."""
    writer = StoreWriter(root, feature_dim=4, encoder={"name": "x"}, tasks=("expr",), expr_classes=EXPR8.split(","))
    writer.set_planned(["v0", "v1", "v2"])
    _write(writer, "v0", "train", update_manifest=True)
    _write(writer, "v1", "validation", update_manifest=False)  # a task's video: no manifest update
    return root


def test_store_knows_committed_videos_from_markers_and_resumes(tmp_path):
    root = _aborted_parallel_store(tmp_path / "store")
    assert sorted(json.loads((root / "manifest.json").read_text())["videos"]) == ["v0"]
    problem = FeatureStore(root).incomplete()
    assert "1 committed videos are missing from manifest.json" in problem and "1 of 3 planned" in problem
    writer = StoreWriter(root, feature_dim=4, encoder={"name": "x"}, tasks=("expr",), expr_classes=EXPR8.split(","))
    assert writer.is_done("v0") and writer.is_done("v1") and not writer.is_done("v2")  # resumable
    _write(writer, "v2", "train", update_manifest=False)
    writer.rebuild_manifest()
    assert FeatureStore(root).incomplete() is None


def test_windows_refuse_an_incomplete_store_or_warn_when_told(tmp_path, caplog):
    root = _aborted_parallel_store(tmp_path / "store")
    spec = WindowSpec(mode="seq2one", length=4, stride=None, tasks=("expr",))
    store = FeatureStore(root)
    with pytest.raises(InputError, match="manifest.json: incomplete feature store") as err:
        WindowDataset(store, store.video_ids(), spec)
    assert "allow_incomplete_store=true" in str(err.value) and "\n" not in str(err.value)
    with caplog.at_level(logging.WARNING):
        windows = WindowDataset(store, store.video_ids(), spec, allow_incomplete=True)
    assert len(windows) > 0 and "INCOMPLETE FEATURE STORE" in caplog.text


def test_train_sequence_cli_refuses_an_incomplete_store_in_one_line(tmp_path, capsys):
    from affectseq.cli import main

    root = write_random_store(tmp_path / "store", n_rows=300, feature_dim=8, video_frames=30, seed=1,
                              val_fraction=0.3)
    marker = sorted((root / "videos").glob("*.json"))[0]
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["videos"][json.loads(marker.read_text())["video_id"]]  # as if a worker's commit was never listed
    (root / "manifest.json").write_text(json.dumps(manifest))
    args = ["train", "sequence", "--store", str(root), "--task", "expr"]
    overrides = ["window=3", "epochs=1", "model.hidden_sizes=[4]"]
    assert main([*args, "--out", str(tmp_path / "run"), *overrides]) == 1
    err = capsys.readouterr().err.strip()
    assert "incomplete feature store" in err and len(err.splitlines()) == 1
    assert main([*args, "--out", str(tmp_path / "run2"), *overrides, "allow_incomplete_store=true"]) == 0
