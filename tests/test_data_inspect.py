"""``affectseq data inspect``: counts on the hand-made ABAW trees, FER2013, image folders, video + CSV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_data_abaw_tree import build_abaw3, build_abaw6, build_abaw2020

from affectseq.cli import main
from affectseq.data.inspect import detect_layout, expr_stats, inspect_dataset, va_stats
from affectseq.errors import InputError


@pytest.fixture(scope="module")
def abaw6(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_abaw6(tmp_path_factory.mktemp("abaw6"))


def _inspect_json(path: Path, capsys: pytest.CaptureFixture, *extra: str) -> dict:
    assert main(["data", "inspect", str(path), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_abaw6_counts_by_hand(abaw6: Path, capsys: pytest.CaptureFixture) -> None:
    report = _inspect_json(abaw6, capsys)
    assert report["layout"] == "abaw6" and set(report["tasks"]) == {"VA", "EXPR", "AU"}
    train = report["tasks"]["EXPR"]["Train_Set"]
    # vidA (10 rows), vidB_left (6), vidB_right (6), vidRows (5); vidBad and vidEmpty are skipped.
    assert (train["videos"], train["frames"], train["annotated_frames"]) == (4, 27, 22)
    # vidA rows 4 and 7, vidB_right rows 4-6, vidRows (no crop folder) 5.
    assert train["frames_without_face"] == 10
    assert train["videos_with_raw_video"] == 3  # vidA, and vidB_left/_right sharing vidB.mp4
    assert train["class_counts"] == {"Neutral": 5, "Anger": 1, "Disgust": 1, "Fear": 2, "Happiness": 9,
                                     "Sadness": 2, "Surprise": 1, "Other": 1}
    assert train["class_percent"]["Happiness"] == pytest.approx(100 * 9 / 22, abs=0.01)
    assert train["imbalance_ratio"] == 9.0
    val = report["tasks"]["EXPR"]["Validation_Set"]
    # vidC 8 rows all valid, vidLong 8 rows of which 3 lie beyond its 5-frame video.
    assert (val["videos"], val["frames"], val["annotated_frames"], val["frames_without_face"]) == (2, 16, 13, 0)
    va = report["tasks"]["VA"]["Train_Set"]
    assert (va["videos"], va["frames"], va["annotated_frames"]) == (2, 16, 13)
    # Valid VA rows: vidA (.5,.5) (-.5,.5) (-.5,-.5) (.5,-.5) (.25,.75) (0,0) (1,-1); vidB_left 6 x (.1,.2).
    valence = [0.5, -0.5, -0.5, 0.5, 0.25, 0.0, 1.0] + [0.1] * 6
    assert va["va"]["valence"]["mean"] == pytest.approx(np.mean(valence), abs=1e-4)
    assert va["va"]["valence"]["std"] == pytest.approx(np.std(valence), abs=1e-4)
    assert va["quadrant_share"] == pytest.approx({"V+A+": 9 / 13, "V-A+": 1 / 13, "V-A-": 1 / 13, "V+A-": 2 / 13},
                                                 abs=1e-4)
    au = report["tasks"]["AU"]["Train_Set"]
    assert (au["videos"], au["frames"], au["annotated_frames"]) == (1, 10, 9)
    assert au["au_positive_rate"]["AU1"] == 1.0 and au["au_positive_rate"]["AU20"] is None
    assert au["au_annotated_frames"]["AU1"] == 8 and au["au_annotated_frames"]["AU2"] == 9
    # Problems: VA lines 7, 8; vidBad, vidEmpty; vidRows lines 3, 4, 5 + no crops; vidLong; AU line 11.
    assert report["warnings"]["count"] == 10
    assert any("vidBad.txt:1" in w for w in report["warnings"]["listed"])


def test_abaw6_tables_and_strict(abaw6: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "inspect", str(abaw6)]) == 0
    out = capsys.readouterr().out
    for text in ("abaw6", "EXPR: class histogram", "Happiness", "9 (40.9%)", "imbalance", "quadrant V+A+",
                 "frames without face crop", "10 problem(s) found"):
        assert text in out, text
    assert main(["data", "inspect", str(abaw6), "--strict"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("affectseq: error: ") and ".txt:" in err and err.count("\n") == 1


def test_abaw2020_and_abaw3_counts(tmp_path: Path) -> None:
    old = inspect_dataset(build_abaw2020(tmp_path / "a2020"))
    assert old["layout"] == "abaw2020"
    expr = old["tasks"]["EXPR"]["Training_Set"]
    assert (expr["videos"], expr["frames"], expr["annotated_frames"], expr["frames_without_face"]) == (1, 6, 4, 0)
    assert expr["class_counts"] == {"Neutral": 1, "Anger": 2, "Disgust": 0, "Fear": 0, "Happiness": 0,
                                    "Sadness": 0, "Surprise": 1}
    assert expr["imbalance_ratio"] is None and expr["imbalance_ratio_nonempty"] == 2.0
    assert old["tasks"]["EXPR"]["Validation_Set"]["frames_without_face"] == 1
    assert old["tasks"]["AU"]["Training_Set"]["au_positive_rate"]["AU20"] == 1.0
    new = inspect_dataset(build_abaw3(tmp_path / "a3"))
    assert new["layout"] == "abaw3" and set(new["tasks"]) == {"VA", "EXPR"}
    train = new["tasks"]["EXPR"]["Train_Set"]
    # p1 (3 rows, all with crops), p2_left (2 rows, crop 2 only).
    assert (train["videos"], train["frames"], train["annotated_frames"], train["frames_without_face"]) == (2, 5, 5, 1)
    assert train["class_counts"]["Other"] == 2
    assert new["tasks"]["VA"]["Train_Set"]["annotated_frames"] == 2 and new["warnings"]["count"] == 0


def test_fer2013_counts(fer2013_path: Path, capsys: pytest.CaptureFixture) -> None:
    report = _inspect_json(fer2013_path, capsys)
    assert report["layout"] == "fer2013"
    train = report["tasks"]["EXPR"]["train"]
    assert train["frames"] == train["annotated_frames"] == 28709
    assert train["class_counts"]["Disgust"] == 436 and train["class_counts"]["Happiness"] == 7215
    assert train["imbalance_ratio"] == pytest.approx(7215 / 436, abs=1e-3)
    assert report["tasks"]["EXPR"]["test"]["frames"] == 3589


def test_image_folder_counts(tmp_path: Path) -> None:
    for split, counts in {"train": {"happy": 4, "sad": 2, "contempt": 1}, "test": {"happy": 1, "sad": 1}}.items():
        for cls, n in counts.items():
            folder = tmp_path / "affectnet" / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / f"{i}.jpg")
    report = inspect_dataset(tmp_path / "affectnet")
    assert report["layout"] == "image_folder" and set(report["tasks"]["EXPR"]) == {"train", "test"}
    train = report["tasks"]["EXPR"]["train"]
    assert train["frames"] == 7 and train["class_counts"]["Other"] == 1 and train["class_counts"]["Happiness"] == 4


def test_video_csv_counts(tmp_path: Path) -> None:
    from test_data_abaw_tree import write_tiny_video

    root = tmp_path / "recordings"
    write_tiny_video(root / "alice.mp4", 6)
    (root / "alice.csv").write_text("frame_idx,expression,valence,arousal\n0,happy,0.5,0.5\n1,Happiness,0.4,0.2\n"
                                    "2,,,\n3,2,-0.3,-0.6\n5,contempt,-5,-5\n")
    write_tiny_video(root / "bob.mp4", 4)
    (root / "bob.csv").write_text("frame_idx,expression\n0,sad\n9,sad\n1,sleepy\n")
    assert detect_layout(root) == "video_csv"
    report = inspect_dataset(root)
    expr = report["tasks"]["EXPR"]["recordings"]
    assert (expr["videos"], expr["frames"], expr["annotated_frames"], expr["frames_without_face"]) == (2, 10, 5, 10)
    assert expr["class_counts"]["Happiness"] == 2 and expr["class_counts"]["Other"] == 1
    assert expr["class_counts"]["Disgust"] == 1 and expr["class_counts"]["Sadness"] == 1
    va = report["tasks"]["VA"]["recordings"]
    assert (va["videos"], va["annotated_frames"]) == (1, 3)
    listed = report["warnings"]["listed"]
    assert report["warnings"]["count"] == 2
    assert any("bob.csv:3: frame_idx 9 outside" in w for w in listed)
    assert any("bob.csv:4: expression 'sleepy'" in w for w in listed)


def test_unknown_layouts(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown dataset layout"):
        detect_layout(tmp_path)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="not a dataset"):
        detect_layout(tmp_path / "x.txt")
    with pytest.raises(InputError, match="not found"):
        detect_layout(tmp_path / "nope")


def test_stat_helpers_known_answers() -> None:
    stats = expr_stats(np.array([0, 0, 0, 1, -1, 2, 2]), ("a", "b", "c"))
    assert stats["class_counts"] == {"a": 3, "b": 1, "c": 2} and stats["imbalance_ratio"] == 3.0
    assert stats["class_percent"] == {"a": 50.0, "b": 16.67, "c": 33.33}
    va = va_stats(np.array([[0.0, 0.0], [-1, 1], [-1, -1], [1, -1]], np.float32))
    assert va["quadrant_share"] == {"V+A+": 0.25, "V-A+": 0.25, "V-A-": 0.25, "V+A-": 0.25}
    assert va["va"]["valence"]["mean"] == -0.25


def test_counts_match_synthetic_ground_truth(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """On a generated dataset, inspect and AbawDataset agree with the generator's own ground truth."""
    from affectseq.data.abaw import AbawDataset
    from affectseq.labels import EXPR_CLASSES_8

    root = tmp_path / "synth"
    if main(["data", "synth", str(root), "--videos", "3", "--frames", "30", "--seed", "3", "--workers", "1",
             "--no-progress"]) != 0:
        pytest.fail("affectseq data synth failed")
    capsys.readouterr()
    report = _inspect_json(root, capsys)
    assert report["layout"] == "abaw6" and report["warnings"]["count"] == 0
    expected: dict = {}
    ds = AbawDataset(root)
    for gt_path in sorted((root / "ground_truth").glob("*.npz")):
        with np.load(gt_path) as gt:
            tasks, split = [str(t) for t in gt["tasks"]], str(gt["split"])
            for task in (str(t) for t in gt["covered_tasks"]):
                annotated = gt["annotated"][tasks.index(task)]
                e = expected.setdefault((task, split), {"videos": 0, "frames": 0, "annotated_frames": 0,
                                                        "frames_without_face": 0, "classes": np.zeros(8, int)})
                e["videos"] += 1
                e["frames"] += len(annotated)
                e["annotated_frames"] += int(annotated.sum())
                e["frames_without_face"] += int((~gt["has_crop"]).sum())
                if task == "EXPR":
                    e["classes"] += np.bincount(gt["expr"][annotated], minlength=8)
                video = next(v for v in ds.videos(task, split) if v.video_id == gt_path.stem)
                assert np.array_equal(video.has_face, gt["has_crop"])
                assert np.array_equal(video.annotated, annotated)
                assert video.source_video == root / str(gt["source_video"])
                if task == "EXPR":
                    assert np.array_equal(video.labels[annotated], gt["expr"][annotated])
                if task == "VA":
                    assert np.allclose(video.labels[annotated], gt["va"][annotated], atol=1e-3)
    assert expected
    for (task, split), e in expected.items():
        got = report["tasks"][task][split]
        for key in ("videos", "frames", "annotated_frames", "frames_without_face"):
            assert got[key] == e[key], (task, split, key)
        if task == "EXPR":
            assert got["class_counts"] == dict(zip(EXPR_CLASSES_8, e["classes"].tolist()))
