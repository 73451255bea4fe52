"""Clip layouts: ``clip_folders`` and ``clip_list`` through the registry, frame folders, bad input, synth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from clip_fixtures import write_frames, write_garbage, write_mp4

from affectseq.cli import main
from affectseq.data.clips import clip_classes
from affectseq.data.crop_export import plan_crop_jobs
from affectseq.data.inspect import detect_layout, inspect_dataset
from affectseq.data.registry import open_dataset
from affectseq.errors import InputError
from affectseq.io.video import VideoReader, header_frame_count, probe_video
from affectseq.labels import EXPR_CLASSES_8


@pytest.fixture(scope="module")
def split_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/{happy,Angry,pain}/ and val/{happy,Angry,pain}/ with mp4 clips and one frame-folder clip."""
    root = tmp_path_factory.mktemp("clips")
    lengths = {"happy": 6, "Angry": 8, "pain": 10}
    for split in ("train", "val"):
        for k, (name, n) in enumerate(lengths.items()):
            write_mp4(root / split / name / f"c{k}.mp4", n, seed=k)
    write_frames(root / "train" / "pain" / "frames_clip", 12)
    return root


def _read_json(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    assert main(["data", "inspect", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_clip_folders_classes_splits_and_labels(split_clips: Path) -> None:
    ds = open_dataset(split_clips, fps=12.5)
    assert ds.layout == "clip_folders" and ds.label_level == "clip" and not ds.has_crops
    # Aliases map to the canonical classes in canonical order; other names stay the dataset's own, after them.
    assert ds.expr_classes == ("Anger", "Happiness", "pain")
    assert ds.splits("EXPR") == ("train", "validation") and ds.tasks == ("EXPR",)
    train = {v.video_id: v for v in ds.videos("EXPR", "train")}
    assert len(train) == 4
    happy = train["train-happy-c0"]
    assert happy.n_frames == 6 and happy.source_video == split_clips / "train" / "happy" / "c0.mp4"
    assert (happy.labels == 1).all() and happy.label_valid.all() and not happy.has_face.any()
    folder = train["train-pain-frames_clip"]
    assert folder.n_frames == 12 and (folder.labels == 2).all() and folder.fps == 12.5
    assert happy.fps is None  # video files keep their own rate (read from the file)
    assert not ds.warnings


def test_clip_folders_without_splits_hold_out_validation(tmp_path: Path) -> None:
    for k in range(5):
        write_mp4(tmp_path / "happy" / f"h{k}.mp4", 3, seed=k)
        write_mp4(tmp_path / "sad" / f"s{k}.mp4", 3, seed=k)
    report = inspect_dataset(tmp_path)
    assert report["layout"] == "clip_folders" and report["label_level"] == "clip"
    counts = {split: stats["videos"] for split, stats in report["tasks"]["EXPR"].items()}
    assert counts == {"train": 8, "validation": 2}  # 20% of each class's 5 clips
    assert any("held out as validation" in note for note in report["notes"])
    again = open_dataset(tmp_path)
    assert [v.video_id for v in again.videos("EXPR", "validation")] == \
        [v.video_id for v in open_dataset(tmp_path).videos("EXPR", "validation")]


def test_frame_folder_reads_as_a_video(tmp_path: Path) -> None:
    folder = write_frames(tmp_path / "clip", 12, names="img_{:d}.png")  # 1..12: numeric, not name order
    info = probe_video(folder)
    assert (info.frame_count, info.fps, info.width, info.codec) == (12, 0.0, 32, "images")
    assert header_frame_count(folder) == 12
    frames = list(VideoReader(folder, fps=4.0))
    assert [f.frame_idx for f in frames] == list(range(12))
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [10 * k for k in range(12)]  # frame k has grey 10 k
    assert frames[4].time_sec == pytest.approx(1.0)
    assert [f.frame_idx for f in VideoReader(folder, stride=5)] == [0, 5, 10]
    (folder / "img_7.png").write_bytes(b"broken")
    from affectseq.io.video import VideoDecodeError

    with pytest.raises(VideoDecodeError, match="img_7.png"):
        list(VideoReader(folder))


def test_image_trees_stay_image_folders(tmp_path: Path) -> None:
    import cv2

    for name in ("happy", "sad"):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    assert detect_layout(tmp_path) == "image_folder"


def test_bad_clip_folders_are_reported_by_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_mp4(tmp_path / "train" / "happy" / "ok.mp4", 4)
    write_garbage(tmp_path / "train" / "happy" / "broken.mp4")
    write_mp4(tmp_path / "train" / "sad" / "ok.mp4", 4)
    (tmp_path / "train" / "fear").mkdir()  # an empty class folder
    write_garbage(tmp_path / "train" / "disgust" / "only.avi")  # a label whose every clip is unreadable
    report = _read_json(capsys, str(tmp_path))
    listed = report["warnings"]["listed"]
    assert any(w.startswith(str(tmp_path / "train" / "fear")) and "empty class folder" in w for w in listed)
    assert any(w.startswith(str(tmp_path / "train" / "happy" / "broken.mp4")) and "unreadable" in w for w in listed)
    assert any("label Disgust has no readable clips" in w for w in listed)
    assert report["tasks"]["EXPR"]["train"]["videos"] == 2
    assert main(["data", "inspect", str(tmp_path), "--strict"]) != 0
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if line.strip()]) == 1 and str(tmp_path) in err


def test_clip_list_rows_ranges_and_problems(tmp_path: Path) -> None:
    write_mp4(tmp_path / "media" / "long.mp4", 50, fps=25)
    write_mp4(tmp_path / "media" / "short.mp4", 5)
    csv = tmp_path / "list.csv"
    csv.write_text("video,label,split,start_sec,end_sec\n"
                   "media/long.mp4,happy,train,0,1\n"
                   "media/long.mp4,sad,train,1,2\n"
                   "media/short.mp4,neutral,validation,,\n"
                   "media/short.mp4,neutral,validation,,\n"    # listed twice
                   "media/missing.mp4,sad,train,,\n"
                   "media/short.mp4,,train,,\n"               # no label
                   "media/long.mp4,happy,holdout,,\n")         # not a split
    assert detect_layout(csv) == "clip_list"
    ds = open_dataset(csv)
    assert ds.expr_classes == ("Neutral", "Happiness", "Sadness")
    train = ds.videos("EXPR", "train")
    assert [(v.start_sec, v.end_sec, v.n_frames) for v in train] == [(0.0, 1.0, 25), (1.0, 2.0, 25)]
    assert [int(v.labels[0]) for v in train] == [1, 2]
    assert len(ds.videos("EXPR", "validation")) == 1
    lines = {w.line: w.problem for w in ds.warnings}
    assert "listed twice" in lines[5] and "not found" in lines[6] and "without a label" in lines[7]
    assert "not train, validation or test" in lines[8]
    with pytest.raises(InputError, match=r"list\.csv:\d: "):  # strict: the first problem, with its line
        open_dataset(csv, strict=True)


def test_clip_classes_rule() -> None:
    classes, mapping = clip_classes(["surprised", "joy", "calm", "Contempt", "neutral"])
    assert classes == ("Neutral", "Happiness", "Surprise", "Contempt", "calm")
    assert mapping["joy"] == "Happiness" and mapping["Contempt"] == "Contempt"


def test_crop_plan_of_clips_declares_classes(split_clips: Path) -> None:
    plan = plan_crop_jobs(split_clips, fps=10.0)
    assert plan.layout == "clip_folders" and plan.label_level == "clip" and len(plan.jobs) == 7
    assert plan.declaration == {"label_level": "clip", "expr_classes": ["Anger", "Happiness", "pain"],
                                "source_layout": "clip_folders"}
    job = next(j for j in plan.jobs if j.key == "train-pain-frames_clip")
    assert job.video.is_dir() and job.fps == 10.0 and job.persons[0].rule == "main"
    text = next(iter(job.persons[0].annotations.values()))
    assert text.splitlines()[0] == "Anger,Happiness,pain" and text.splitlines()[1:] == ["2"] * 12


def test_synth_clip_folders_is_both_layouts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "synth"
    assert main(["data", "synth", str(out), "--layout", "clip_folders", "--videos", "6", "--frames", "8",
                 "--workers", "1", "--no-progress", "--set", "clip_classes=[Happiness,Sadness,Surprise]"]) == 0
    capsys.readouterr()
    report = _read_json(capsys, str(out))
    assert report["layout"] == "clip_folders" and not report["warnings"]["count"]
    assert {s: r["videos"] for s, r in report["tasks"]["EXPR"].items()} == {"train": 3, "validation": 3}
    listed = open_dataset(out / "clips.csv")
    folders = open_dataset(out)
    assert listed.layout == "clip_list" and listed.expr_classes == folders.expr_classes == (
        "Happiness", "Sadness", "Surprise")
    for split in ("train", "validation"):
        by_clip = {v.source_video: int(v.labels[0]) for v in folders.videos("EXPR", split)}
        assert by_clip == {v.source_video: int(v.labels[0]) for v in listed.videos("EXPR", split)}
        for clip, label in by_clip.items():  # the class folder is the class
            assert clip.parent.name == folders.expr_classes[label].lower()
            assert header_frame_count(clip) == 8
    assert EXPR_CLASSES_8  # the synthetic classes are canonical names


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_clip_folders_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """synth -> inspect -> data faces / extract straight from the clips (same store) -> train frames ->
    evaluate-model on the clip dataset (clip-level metrics)."""
    from affectseq.features.store import FeatureStore

    clips = tmp_path / "clips"
    assert main(["data", "synth", str(clips), "--layout", "clip_folders", "--videos", "6", "--frames", "16",
                 "--workers", "1", "--no-progress", "--set", "clip_classes=[Happiness,Sadness,Surprise]"]) == 0
    assert main(["data", "faces", str(clips), "--out", str(tmp_path / "faces"), "--no-progress"]) == 0
    assert main(["extract", "--data", str(tmp_path / "faces"), "--checkpoint", "default",
                 "--out", str(tmp_path / "from_crops"), "--workers", "0"]) == 0
    assert main(["extract", "--data", str(clips), "--checkpoint", "default", "--out", str(tmp_path / "direct"),
                 "--workers", "1"]) == 0
    capsys.readouterr()
    one, two = FeatureStore(tmp_path / "from_crops"), FeatureStore(tmp_path / "direct")
    for store in (one, two):
        assert store.label_level == "clip" and store.expr_classes == ("Happiness", "Sadness", "Surprise")
        assert sorted(store.splits("expr")) == ["train", "validation"]
    assert sorted(one.entries) == sorted(two.entries) and len(one.entries) == 6
    for video_id in one.entries:
        np.testing.assert_array_equal(one.labels(video_id)["expr"], two.labels(video_id)["expr"])
        np.testing.assert_array_equal(one.labels(video_id)["has_face"], two.labels(video_id)["has_face"])
    run = tmp_path / "run"
    assert main(["train", "frames", "--data", str(clips), "--out", str(run), "--encoder", "paper_cnn",
                 "epochs=1", "batch_size=16", "threads=1", "device=cpu", "test_split=null"]) == 0
    assert main(["evaluate-model", str(run), "--data", str(clips), "--split", "validation",
                 "--out", str(tmp_path / "eval"), "--bootstrap", "0"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["clip"]["n_clips"] <= 3 and "uar" in metrics["clip"]


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_time_ranged_clip_is_cropped_from_its_range(tmp_path: Path, clips_dir: Path) -> None:
    """A clip_list row with start_sec/end_sec: data faces crops only that part, numbered from its start."""
    import shutil

    shutil.copyfile(clips_dir / "single_face.mp4", tmp_path / "talk.mp4")  # 72 frames at 30 fps
    (tmp_path / "list.csv").write_text("video,label,split,start_sec,end_sec\n"
                                       "talk.mp4,happy,train,1.0,1.5\n"
                                       "talk.mp4,sad,validation,2.0,2.4\n")
    out = tmp_path / "faces"
    assert main(["data", "faces", str(tmp_path / "list.csv"), "--out", str(out), "--no-progress",
                 "--detector", "haar", "--detect-every", "4"]) == 0
    tree = open_dataset(out)
    assert tree.label_level == "clip" and tree.expr_classes == ("Happiness", "Sadness")
    assert any("clip_list" in note for note in tree.notes)
    (happy,) = tree.videos("EXPR", "train")
    (sad,) = tree.videos("EXPR", "validation")
    assert (happy.n_frames, sad.n_frames) == (15, 12) and (happy.labels == 0).all() and (sad.labels == 1).all()
    crops = sorted(p.name for p in happy.crop_dir.glob("*.jpg"))
    assert crops and crops[0] == "00001.jpg" and len(crops) <= 15  # frame 0 = the first frame at 1.0 s
    assert happy.has_face.sum() == len(crops)


def test_clip_list_non_finite_or_negative_times_are_row_problems(tmp_path: Path) -> None:
    """Before, ``nan``/``inf`` parsed as times: opening the list crashed (``int(round(nan))`` in the clip's length)."""
    write_mp4(tmp_path / "media" / "long.mp4", 50, fps=25)
    csv = tmp_path / "list.csv"
    csv.write_text("video,label,split,start_sec,end_sec\n"
                   "media/long.mp4,happy,train,0,1\n"
                   "media/long.mp4,sad,train,nan,1\n"
                   "media/long.mp4,sad,train,0,inf\n"
                   "media/long.mp4,sad,train,-1,1\n")
    ds = open_dataset(csv)
    assert [(v.start_sec, v.end_sec) for v in ds.videos("EXPR", "train")] == [(0.0, 1.0)]
    lines = {w.line: w.problem for w in ds.warnings}
    assert set(lines) == {3, 4, 5} and all("row skipped" in p for p in lines.values()), lines
