"""ABAW adapter on hand-made mini trees (tests/test_data_abaw_tree.py): layouts, alignment, masks, warnings."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from test_data_abaw_tree import build_abaw3, build_abaw6, build_abaw2020

from affectseq import labels
from affectseq.data.abaw import AbawDataset
from affectseq.data.frames import FrameSet
from affectseq.errors import InputError


@pytest.fixture(scope="module")
def abaw6(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_abaw6(tmp_path_factory.mktemp("abaw6"))


@pytest.fixture(scope="module")
def ds6(abaw6: Path) -> AbawDataset:
    ds = AbawDataset(abaw6)
    ds.index_all()
    return ds


def _by_id(ds: AbawDataset, task: str, split: str) -> dict:
    return {v.video_id: v for v in ds.videos(task, split)}


def test_abaw6_layout_tasks_splits(ds6: AbawDataset) -> None:
    assert ds6.layout == "abaw6"
    assert ds6.tasks == ("VA", "EXPR", "AU")
    assert ds6.splits("EXPR") == ("Train_Set", "Validation_Set")
    assert ds6.splits("expr") == ds6.splits("EXPR")  # task names in any case
    assert ds6.expr_classes == labels.EXPR_CLASSES_8
    # vidBad (wrong header) and vidEmpty are skipped; _left/_right are two videos.
    assert sorted(_by_id(ds6, "EXPR", "Train_Set")) == ["vidA", "vidB_left", "vidB_right", "vidRows"]


def test_expr_labels_aligned_with_face_and_valid_masks(ds6: AbawDataset, abaw6: Path) -> None:
    vid = _by_id(ds6, "EXPR", "Train_Set")["vidA"]
    assert vid.n_frames == 10 and vid.labels.dtype == np.int64
    assert vid.labels.tolist() == [0, 0, 4, 4, 4, -1, 7, 2, 1, 3]
    assert vid.label_valid.tolist() == [True] * 5 + [False] + [True] * 4
    assert np.flatnonzero(~vid.has_face).tolist() == [3, 6]  # crops 00004.jpg and 00007.jpg are missing
    assert vid.crop_path(0) == abaw6 / "cropped_aligned" / "vidA" / "00001.jpg"
    assert vid.crop_path(3) is None and vid.crop_path(10) is None
    assert vid.source_video == abaw6 / "batch1" / "vidA.mp4"
    assert vid.annotation_path.name == "vidA.txt"


def test_two_person_videos_share_the_raw_video(ds6: AbawDataset, abaw6: Path) -> None:
    videos = _by_id(ds6, "EXPR", "Train_Set")
    left, right = videos["vidB_left"], videos["vidB_right"]
    assert left.source_video == right.source_video == abaw6 / "batch2" / "vidB.mp4"
    assert left.crop_dir != right.crop_dir
    assert right.has_face.tolist() == [True] * 3 + [False] * 3


def test_malformed_rows_are_masked_not_shifted(ds6: AbawDataset) -> None:
    vid = _by_id(ds6, "EXPR", "Train_Set")["vidRows"]
    assert vid.n_frames == 5 and vid.labels.tolist() == [0, -1, -1, -1, 3]
    assert not vid.has_face.any() and vid.crop_dir is None and vid.source_video is None
    messages = [str(w) for w in ds6.warnings]
    rows_file = str(vid.annotation_path)
    for line, what in [(3, "expected 1 columns"), (4, "non-numeric"), (5, "integer in 0..7")]:
        assert any(m.startswith(f"{rows_file}:{line}: ") and what in m for m in messages), (line, messages)
    assert any(m.startswith(rows_file) and "no crop folder" in m for m in messages)
    assert any("vidBad.txt:1: wrong header" in m for m in messages)
    assert any("vidEmpty.txt:1: empty annotation file" in m for m in messages)


def test_annotation_longer_than_video_is_masked(ds6: AbawDataset) -> None:
    vid = _by_id(ds6, "EXPR", "Validation_Set")["vidLong"]
    assert vid.n_frames == 8 and vid.label_valid.tolist() == [True] * 5 + [False] * 3
    assert vid.labels.tolist() == [0] * 5 + [-1] * 3
    assert any("vidLong.txt:7:" in str(w) and "has 5 frames" in str(w) for w in ds6.warnings)


def test_crlf_and_trailing_blank_lines(ds6: AbawDataset) -> None:
    vid = _by_id(ds6, "EXPR", "Validation_Set")["vidC"]
    assert vid.labels.tolist() == list(range(8)) and vid.source_video is None


def test_va_values_markers_and_range(ds6: AbawDataset) -> None:
    vid = _by_id(ds6, "VA", "Train_Set")["vidA"]
    assert vid.labels.dtype == np.float32 and vid.labels.shape == (10, 2)
    assert vid.label_valid.tolist() == [True] * 4 + [False] * 3 + [True] * 3
    assert np.isnan(vid.labels[4:7]).all()
    assert vid.labels[7].tolist() == [0.25, 0.75]
    messages = [str(w) for w in ds6.warnings]
    assert any("VA_Estimation_Challenge" in m and "vidA.txt:7: valence/arousal outside" in m for m in messages)
    assert any("vidA.txt:8: only one of valence/arousal" in m for m in messages)


def test_au_union_space_and_missing_aus(ds6: AbawDataset) -> None:
    a = _by_id(ds6, "AU", "Train_Set")["vidA"]
    assert a.labels.shape == (10, 13) and a.labels.dtype == np.int8
    au1, au20 = labels.AU_NAMES.index("AU1"), labels.AU_NAMES.index("AU20")
    assert a.labels[:8, au1].tolist() == [1] * 8
    assert (a.labels[:, au20] == -1).all()  # the ABAW 3 header has no AU20
    assert not a.label_valid[8].any()  # an all -1 row
    assert a.labels[9, au1] == -1 and a.label_valid[9].sum() == 11  # AU1 = 2 masked, the rest kept
    c = _by_id(ds6, "AU", "Validation_Set")["vidC"]
    assert c.au_columns == tuple(labels.AU_NAMES_ABAW2020)
    for name in ("AU7", "AU10", "AU23", "AU24", "AU26"):
        assert (c.labels[:, labels.AU_NAMES.index(name)] == -1).all()
    assert c.labels[0, labels.AU_NAMES.index("AU2")] == 1


def test_frame_set_holds_crop_frames_only(ds6: AbawDataset) -> None:
    fs = ds6.frame_set("EXPR", "Train_Set")
    assert isinstance(fs, FrameSet)
    # vidA 8 crops + vidB_left 6 + vidB_right 3 (vidRows has none).
    assert len(fs) == 17 and fs.va is None and fs.expr_classes == labels.EXPR_CLASSES_8
    assert fs.video_ids.tolist().count("vidA") == 8
    i = fs.video_ids.tolist().index("vidA") + 3  # 4th crop of vidA is frame_idx 4 (frame 3 has no face)
    assert fs.frame_idx[i] == 4 and fs.expr[i] == 4
    assert fs.path(i) == str(ds6.root / "cropped_aligned" / "vidA" / "00005.jpg")
    img = fs.load_image(i)
    assert img.shape == (16, 16, 3) and abs(int(img.mean()) - 50) <= 3  # crop 00005.jpg was filled with 50
    annotated = ds6.frame_set("expr", "Train_Set", annotated_only=True)
    assert len(annotated) == 15 and (annotated.expr >= 0).all()  # minus vidA row 6 and vidB_left row 4 (-1)
    # Per item only two integers and the label travel to DataLoader workers, not a path string.
    assert len(pickle.dumps(annotated)) < 2_000 + 30 * len(annotated)
    restored = pickle.loads(pickle.dumps(annotated))
    assert np.array_equal(restored.load_image(0), annotated.load_image(0))
    va = ds6.frame_set("VA", "Train_Set")
    assert va.va.shape == (len(va), 2) and va.expr is None


def test_strict_raises_on_first_problem(abaw6: Path) -> None:
    with pytest.raises(InputError) as err:
        AbawDataset(abaw6, strict=True).index_all()
    assert err.value.line is not None and err.value.path.endswith(".txt")


def test_abaw2020_layout(tmp_path: Path) -> None:
    ds = AbawDataset(build_abaw2020(tmp_path))
    assert ds.layout == "abaw2020" and ds.expr_classes == labels.EXPR_CLASSES_7
    assert ds.splits("EXPR") == ("Training_Set", "Validation_Set") and ds.splits("AU") == ("Training_Set",)
    v1 = ds.videos("EXPR", "Training_Set")[0]
    assert v1.labels.tolist() == [0, 1, 1, 6, -1, -1]  # 7 has no place in 7 classes
    assert any("v1.txt:7: expression must be an integer in 0..6" in str(w) for w in ds.warnings)
    v2 = ds.videos("EXPR", "Validation_Set")[0]
    assert v2.has_face.tolist() == [True, False, True]
    au = ds.videos("AU", "Training_Set")[0]
    assert (au.labels[:, labels.AU_NAMES.index("AU7")] == -1).all()
    assert (au.labels[:, labels.AU_NAMES.index("AU20")] == 1).all()


def test_other_in_a_7_class_tree_is_masked(tmp_path: Path) -> None:
    root = build_abaw2020(tmp_path)
    (root / "annotations" / "EXPR_Set" / "Training_Set" / "v3.txt").write_text(
        "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n0\n7\n7\n")
    ds = AbawDataset(root)
    v3 = next(v for v in ds.videos("EXPR", "Training_Set") if v.video_id == "v3")
    assert v3.labels.tolist() == [0, -1, -1] and v3.label_valid.tolist() == [True, False, False]
    assert any("v3.txt:3: 2 rows labelled Other" in str(w) for w in ds.warnings)
    assert ds.frame_set("EXPR", "Training_Set").expr.max() < 7


def test_abaw3_layout_without_au_or_videos(tmp_path: Path) -> None:
    ds = AbawDataset(build_abaw3(tmp_path))
    assert ds.layout == "abaw3" and ds.tasks == ("VA", "EXPR")
    assert [v.video_id for v in ds.videos("EXPR", "Train_Set")] == ["p1", "p2_left"]
    p2 = ds.videos("EXPR", "Train_Set")[1]
    assert p2.has_face.tolist() == [False, True] and p2.source_video is None
    assert not ds.warnings
    with pytest.raises(InputError, match="no split"):
        ds.videos("EXPR", "Test_Set")


def test_not_an_abaw_root(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no ABAW annotation folders"):
        AbawDataset(tmp_path)
    with pytest.raises(InputError, match="not found"):
        AbawDataset(tmp_path / "missing")
