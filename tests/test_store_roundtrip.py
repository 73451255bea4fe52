"""Feature store: round trip, memory mapping, atomic commits and resume."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from affectseq.errors import InputError
from affectseq.features.store import FeatureStore, make_labels, task_valid
from affectseq.features.store_writer import StoreWriter, write_random_store

ENCODER = {"name": "fake", "input_size": 48, "feature_dim": 6}


def _writer(root, **kw):
    return StoreWriter(root, feature_dim=6, encoder=ENCODER, checkpoint_sha256="abc", tasks=("expr", "va"),
                       expr_classes=("a",) * 7, **kw)


def _video(n, seed):
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((n, 6)).astype(np.float16)
    valid = rng.random(n) > 0.3
    feats[~valid] = 0
    expr = rng.integers(-1, 7, n)
    va = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    va[rng.random(n) < 0.2] = np.nan
    return feats, make_labels(n, feature_valid=valid, has_face=valid, expr=expr, va=va)


def test_round_trip_is_exact_and_memory_mapped(tmp_path):
    writer = _writer(tmp_path / "s")
    data = {f"v{i}": _video(n, i) for i, n in enumerate([10, 37, 1])}
    for i, (vid, (feats, labels)) in enumerate(data.items()):
        writer.write_video(vid, feats, labels, {"expr": "train" if i else "validation", "va": "train"})

    store = FeatureStore(tmp_path / "s")
    assert len(store) == 3 and store.total_frames == 48 and store.feature_dim == 6
    assert store.encoder == ENCODER and store.checkpoint_sha256 == "abc"
    assert store.video_ids("expr", "validation") == ["v0"]
    assert store.video_ids("va", "train") == ["v0", "v1", "v2"]
    for vid, (feats, labels) in data.items():
        got = store.features(vid)
        assert isinstance(got, np.memmap) and got.dtype == np.float16
        np.testing.assert_array_equal(got, feats)
        np.testing.assert_array_equal(store.labels(vid)["expr"], labels["expr"])
        np.testing.assert_array_equal(task_valid(store.labels(vid), "va"), ~np.isnan(labels["va"][:, 0]))
    win_feats, win_labels = store.read_window("v1", 5, 15)
    assert win_feats.dtype == np.float32 and win_feats.shape == (10, 6)
    np.testing.assert_array_equal(win_feats, data["v1"][0][5:15].astype(np.float32))
    # Picklable without open maps (DataLoader workers reopen them).
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone.features("v2"), data["v2"][0])


def test_failure_inside_writer_leaves_no_file_and_resume_skips_finished(tmp_path):
    root = tmp_path / "s"
    writer = _writer(root)
    feats, labels = _video(20, 0)
    writer.write_video("done", feats, labels, {"expr": "train"})

    def crash(out):
        out[:5] = 1.0
        raise RuntimeError("killed mid-video")

    with pytest.raises(RuntimeError):
        writer.write_video_streamed("half", 20, crash, labels, {"expr": "train"})
    leftovers = sorted(p.name for p in (root / "videos").iterdir())
    assert leftovers == ["done.features.npy", "done.json", "done.labels.npy"]
    assert list(json.loads((root / "manifest.json").read_text())["videos"]) == ["done"]

    resumed = _writer(root)  # a new run on the same directory
    assert resumed.is_done("done") and not resumed.is_done("half")
    resumed.write_video("half", feats, labels, {"expr": "train"})
    assert sorted(FeatureStore(root).video_ids()) == ["done", "half"]


def test_reopening_deletes_temporaries_of_a_killed_writer(tmp_path):
    """kill -9 mid-write leaves hidden videos/.*.tmp files (atomic_path cannot clean up); resuming removes them."""
    root = tmp_path / "s"
    feats, labels = _video(12, 0)
    _writer(root).write_video("done", feats, labels, {"expr": "train"})
    videos = root / "videos"
    orphans = [videos / ".half.features.npy.k3j9x.tmp", videos / ".half.labels.npy.a1b2.tmp"]
    for path in orphans:
        path.write_bytes(b"\0" * 64)
    (videos / "notes.txt").write_text("not ours")

    _writer(root, remove_stale=False)  # opted out: nothing touched
    assert all(p.exists() for p in orphans)
    resumed = _writer(root)
    assert not any(p.exists() for p in orphans)
    assert (videos / "notes.txt").exists() and resumed.is_done("done")
    np.testing.assert_array_equal(FeatureStore(root).features("done"), feats)


def test_resume_with_other_checkpoint_is_refused(tmp_path):
    _writer(tmp_path / "s")
    with pytest.raises(InputError, match="checkpoint_sha256"):
        StoreWriter(tmp_path / "s", feature_dim=6, encoder=ENCODER, checkpoint_sha256="other")


def test_missing_or_foreign_manifest_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="manifest.json missing"):
        FeatureStore(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not an affectseq feature store"):
        FeatureStore(tmp_path)


def test_random_store_has_requested_rows_and_gaps(tmp_path):
    write_random_store(tmp_path / "r", n_rows=2500, feature_dim=8, video_frames=1000, seed=1)
    store = FeatureStore(tmp_path / "r")
    assert len(store) == 3 and store.total_frames == 2500
    labels = store.labels("rand00000")
    feats = store.features("rand00000")
    valid = labels["feature_valid"]
    assert 0.8 < valid.mean() < 1.0
    assert not np.any(feats[~valid]) and np.all(np.abs(feats[valid]).sum(axis=1) > 0)
    assert set(store.splits("expr")) <= {"train", "validation"}
