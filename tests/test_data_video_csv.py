"""Video + per-frame CSV adapter: columns, alignment to frame_idx, warnings and strict mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_data_abaw_tree import write_tiny_video

from affectseq import labels
from affectseq.data.video_csv import VideoCsvDataset, find_pairs
from affectseq.errors import InputError


@pytest.fixture()
def recordings(tmp_path: Path) -> Path:
    root = tmp_path / "rec"
    write_tiny_video(root / "train" / "a.mp4", 5)
    (root / "train" / "a.csv").write_text(
        "Frame_Idx, Valence, Arousal, AU12, au4, AU5, note\n"
        "4,0.5,-0.5,1,0,1,x\n"
        "0,-5,-5,0,-1,0,y\n"
        "\n"
        "2,0.1,0.2,,1,0,z\n")
    write_tiny_video(root / "val" / "b.mkv", 3)
    (root / "val" / "b.csv").write_text("frame_idx,emotion\n0,Angry\n1,7\n2,-1\n")
    (root / "val" / "orphan.csv").write_text("frame_idx,emotion\n0,sad\n")  # no video: not a pair
    return root


def test_pairs_splits_and_tasks(recordings: Path) -> None:
    pairs = find_pairs(recordings)
    assert {s: [c.name for _, c in p] for s, p in pairs.items()} == {"train": ["a.csv"], "val": ["b.csv"]}
    ds = VideoCsvDataset(recordings)
    assert ds.tasks == ("VA", "EXPR", "AU")
    assert ds.splits("VA") == ("train",) and ds.splits("expr") == ("val",)


def test_labels_aligned_to_frame_idx(recordings: Path) -> None:
    ds = VideoCsvDataset(recordings)
    (va,) = ds.videos("VA", "train")
    assert va.n_frames == 5 and va.source_video.name == "a.mp4" and not va.has_face.any()
    assert va.label_valid.tolist() == [False, False, True, False, True]
    assert va.labels[4].tolist() == [0.5, -0.5] and np.allclose(va.labels[2], [0.1, 0.2])
    (au,) = ds.videos("AU", "train")
    au12, au4 = labels.AU_NAMES.index("AU12"), labels.AU_NAMES.index("AU4")
    assert au.labels[:, au12].tolist() == [0, -1, -1, -1, 1]
    assert au.labels[:, au4].tolist() == [-1, -1, 1, -1, 0]
    assert au.au_columns == ("AU12", "AU4")
    (expr,) = ds.videos("EXPR", "val")
    assert expr.labels.tolist() == [labels.EXPR_CLASSES_8.index("Anger"), 7, -1]
    # AU5 is not in the 13-AU union: reported once, on the header line.
    assert [str(w) for w in ds.warnings] == [f"{recordings / 'train' / 'a.csv'}:1: column 'au5' is not one of the "
                                             f"13 AUs ({', '.join(labels.AU_NAMES)}); ignored"]


def test_bad_csvs(tmp_path: Path) -> None:
    write_tiny_video(tmp_path / "c.mp4", 4)
    (tmp_path / "c.csv").write_text("frame_idx,valence,arousal\n0,0.1,0.1\n0,0.2,0.2\nx,0,0\n1,2,0\n2,a,b\n")
    write_tiny_video(tmp_path / "d.mp4", 2)
    (tmp_path / "d.csv").write_text("frame,expression\n0,happy\n")
    ds = VideoCsvDataset(tmp_path)
    (c,) = ds.videos("VA", tmp_path.name)
    assert c.label_valid.tolist() == [True, False, False, False] and np.allclose(c.labels[0], [0.1, 0.1])
    text = "\n".join(str(w) for w in ds.warnings)
    for expected in ("c.csv:3: frame_idx 0 listed twice", "c.csv:4: frame_idx 'x' is not an integer",
                     "c.csv:5: valence/arousal outside [-1, 1]: 2,0", "c.csv:6: valence/arousal not numeric",
                     "d.csv:1: no 'frame_idx' column"):
        assert expected in text
    assert ds.n_problems == 5
    with pytest.raises(InputError, match=r"c\.csv:3: frame_idx 0 listed twice"):
        VideoCsvDataset(tmp_path, strict=True)
    with pytest.raises(InputError, match="no <name>"):
        VideoCsvDataset(tmp_path / "nothing")
