"""Window indexing with known answers: targets, masks at gaps, padding, video boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from affectseq.features.store import FeatureStore, make_labels
from affectseq.features.store_writer import StoreWriter
from affectseq.sequences.dataset import WindowDataset, balanced_window_indices, collate_windows
from affectseq.sequences.windows import WindowSpec

# video -> (n_frames, frames without a feature, frames without an expr label)
VIDEOS = {"A": (10, {4}, {8}), "B": (2, set(), set()), "C": (6, {0, 1, 2}, set())}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> FeatureStore:
    root = tmp_path_factory.mktemp("store")
    writer = StoreWriter(root, feature_dim=3, tasks=("expr", "va"), expr_classes=("x",) * 7)
    for v, (vid, (n, gaps, unlabelled)) in enumerate(VIDEOS.items()):
        frame = np.arange(n)
        valid = ~np.isin(frame, list(gaps))
        # Row content encodes (frame_idx, video number, 1) so a read can be checked exactly;
        # gap rows hold garbage (999) that windows must never pass on.
        feats = np.stack([frame, np.full(n, v), np.ones(n)], axis=1).astype(np.float16)
        feats[~valid] = 999
        expr = frame % 7
        expr[list(unlabelled)] = -1
        va = np.stack([frame / 10, -frame / 10], axis=1).astype(np.float32)
        labels = make_labels(n, feature_valid=valid, has_face=valid, expr=expr, va=va)
        writer.write_video(vid, feats, labels, {"expr": "train", "va": "train"})
    return FeatureStore(root)


def _anchors(ds: WindowDataset) -> list[tuple[str, int]]:
    videos, anchors = ds.index.anchors()
    return [(ds.video_ids[v], int(a)) for v, a in zip(videos, anchors)]


def test_seq2one_targets_are_the_frame_after_the_window(store):
    ds = WindowDataset(store, ["A", "B", "C"], WindowSpec(mode="seq2one", length=3, tasks=("expr",)))
    # A: t in 3..9 except the unlabelled 8; B too short; C: t=3's window [0,3) has no face.
    assert _anchors(ds) == [("A", 3), ("A", 4), ("A", 5), ("A", 6), ("A", 7), ("A", 9), ("C", 4), ("C", 5)]
    s = ds[2]  # A, t=5: window frames 2, 3, 4 (4 is a gap)
    np.testing.assert_array_equal(s["frame_idx"], [2, 3, 4])
    np.testing.assert_array_equal(s["mask"], [True, True, False])
    np.testing.assert_array_equal(s["features"][:, 0], [2, 3, 0])  # gap zeroed, not the stored 999
    assert s["target_frame_idx"] == 5 and s["expr"] == 5
    np.testing.assert_allclose(s["va"], [0.5, -0.5])
    c = ds[6]  # C, t=4: frames 1, 2, 3 -> only 3 has a face; all rows from video C (index 2)
    np.testing.assert_array_equal(c["mask"], [False, False, True])
    assert c["video"] == 2 and np.all(c["features"][2] == [3, 2, 1])


def test_seq2one_stride_and_va_task(store):
    ds = WindowDataset(store, ["A"], WindowSpec(mode="seq2one", length=3, stride=2, tasks=("va",)))
    assert _anchors(ds) == [("A", 3), ("A", 5), ("A", 7), ("A", 9)]  # frame 8 has VA, but stride skips it


def test_seq2one_pad_start_predicts_early_frames_from_padded_windows(store):
    ds = WindowDataset(store, ["B"], WindowSpec(mode="seq2one", length=3, pad_start=True))
    assert _anchors(ds) == [("B", 1)]
    s = ds[0]
    np.testing.assert_array_equal(s["frame_idx"], [-1, -1, 0])
    np.testing.assert_array_equal(s["mask"], [False, False, True])
    assert s["expr"] == 1


def test_seq2seq_covers_every_frame_and_masks_gaps_and_padding(store):
    ds = WindowDataset(store, ["A", "B"], WindowSpec(mode="seq2seq", length=4))
    assert _anchors(ds) == [("A", 0), ("A", 4), ("A", 8), ("B", 0)]
    s = ds[1]  # A frames 4..7; 4 is a gap -> no feature and no label there
    np.testing.assert_array_equal(s["mask"], [False, True, True, True])
    np.testing.assert_array_equal(s["expr"], [-1, 5, 6, 0])
    assert np.isnan(s["va"][0]).all() and np.allclose(s["va"][1], [0.5, -0.5])
    last = ds[2]  # A frames 8, 9, then padding past the end of the video
    np.testing.assert_array_equal(last["frame_idx"], [8, 9, -1, -1])
    np.testing.assert_array_equal(last["mask"], [True, True, False, False])
    np.testing.assert_array_equal(last["expr"], [-1, 2, -1, -1])  # 8 unlabelled, padding unlabelled
    assert np.all(last["features"][2:] == 0)
    b = ds[3]
    np.testing.assert_array_equal(b["frame_idx"], [0, 1, -1, -1])
    assert np.all(b["features"][:2, 1] == 1)  # rows of video B only: windows never cross videos


def test_collate_and_balancing(store):
    ds = WindowDataset(store, ["A", "C"], WindowSpec(mode="seq2one", length=3))
    batch = collate_windows([ds[i] for i in range(len(ds))])
    assert tuple(batch["features"].shape) == (len(ds), 3, 3) and batch["mask"].dtype.is_floating_point is False
    targets = ds.target_labels("expr")
    np.testing.assert_array_equal(targets, batch["expr"].numpy())
    kept = balanced_window_indices(ds, "expr", "expr_downsample", random_state=0)
    counts = np.bincount(targets[kept])
    assert set(counts[counts > 0]) == {1}  # every present class cut to the minority count (1)


def test_index_memory_grows_with_gaps_not_frames(tmp_path):
    writer = StoreWriter(tmp_path, feature_dim=2, tasks=("expr",))
    n = 200_000
    writer.write_video("long", np.ones((n, 2), np.float16),
                       make_labels(n, feature_valid=np.ones(n, bool), expr=np.zeros(n, int)), {"expr": "train"})
    ds = WindowDataset(FeatureStore(tmp_path), ["long"], WindowSpec(length=100))
    assert len(ds) == n - 100
    assert ds.index.memory_bytes < 100
    video, anchor = ds.index.locate(len(ds) - 1)
    assert anchor == n - 1


def test_a_video_in_different_splits_per_task_leaks_no_labels(tmp_path):
    writer = StoreWriter(tmp_path, feature_dim=2, tasks=("expr", "va"))
    n = 6
    labels = make_labels(n, feature_valid=np.ones(n, bool), expr=np.arange(n) % 2,
                         va=np.full((n, 2), 0.5, np.float32))
    writer.write_video("mixed", np.ones((n, 2), np.float16), labels, {"expr": "train", "va": "validation"})
    store = FeatureStore(tmp_path)
    spec = WindowSpec(mode="seq2seq", length=3, tasks=("expr", "va"))
    train = WindowDataset(store, store.video_ids("multi", "train"), spec, split="train")
    val = WindowDataset(store, store.video_ids("multi", "validation"), spec, split="validation")
    assert train.video_ids == val.video_ids == ("mixed",)
    t, v = train[0], val[0]
    np.testing.assert_array_equal(t["expr"], [0, 1, 0])
    assert np.isnan(t["va"]).all()
    assert np.all(v["expr"] == -1) and np.allclose(v["va"], 0.5)
    only_va = WindowDataset(store, ["mixed"], WindowSpec(mode="seq2one", length=2, tasks=("expr",)),
                            split="validation")
    assert len(only_va) == 0  # its EXPR labels belong to the training split
