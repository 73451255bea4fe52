"""``affectseq data faces``: a video+CSV dataset of real clips becomes an ABAW tree AbawDataset reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from affectseq.cli import main
from affectseq.data.abaw import AbawDataset
from affectseq.data.video_csv import VideoCsvDataset
from affectseq.faces.stream import FaceCropStream, make_tracker
from affectseq.prepare.face_crops import MARKER_DIR, export_face_crops
from affectseq.prepare.video_crops import side_faces


def _write_csv(path: Path, n_frames: int, seed: int, face_id: int | None = None) -> None:
    """Labels for every 2nd frame (the others unannotated), all three tasks."""
    rng = np.random.default_rng(seed)
    lines = ["frame_idx,expression,valence,arousal,AU1,AU12" + (",face_id" if face_id is not None else "")]
    for f in range(0, n_frames, 2):
        v, a = rng.uniform(-1, 1, 2).round(3)
        row = f"{f},{int(rng.integers(0, 8))},{v},{a},{int(rng.integers(0, 2))},{int(rng.integers(0, 2))}"
        lines.append(row + (f",{face_id}" if face_id is not None else ""))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def dataset(clips_dir, tmp_path_factory) -> Path:
    """train/ holds the one-face clip, validation/ the five-face pan (person = the face with id 2)."""
    root = tmp_path_factory.mktemp("own") / "videos"
    for split, clip, n, face_id in (("train", "single_face.mp4", 72, None), ("validation", "multi_face_pan.mp4", 48, 2)):
        (root / split).mkdir(parents=True)
        shutil.copy(clips_dir / clip, root / split / clip)
        _write_csv(root / split / clip.replace(".mp4", ".csv"), n, seed=n, face_id=face_id)
    return root


@pytest.fixture(scope="module")
def exported(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "crops"
    assert main(["data", "faces", str(dataset), "--out", str(out), "--no-progress"]) == 0
    return out


def _stream_frames(video: Path, main_face_only: bool) -> list:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return list(FaceCropStream(video, make_tracker("mtcnn", 8, main_face_only)).frames())
    finally:
        torch.set_num_threads(threads)


def test_abaw_dataset_reads_the_same_labels_per_frame(dataset, exported) -> None:
    source, out = VideoCsvDataset(dataset), AbawDataset(exported, strict=True)
    assert out.layout == "abaw6" and set(out.tasks) == {"VA", "EXPR", "AU"}
    for task in ("VA", "EXPR", "AU"):
        for split in ("train", "validation"):
            [want], [got] = source.videos(task, split), out.videos(task, split)
            assert got.video_id == want.video_id and got.n_frames == want.n_frames
            np.testing.assert_array_equal(got.label_valid, want.label_valid)
            np.testing.assert_array_equal(got.labels, want.labels)
    assert out.videos("AU", "train")[0].au_columns == ("AU1", "AU12")


def test_crops_exist_exactly_where_the_person_has_a_face(dataset, exported) -> None:
    single = AbawDataset(exported).videos("EXPR", "train")[0]
    frames = _stream_frames(dataset / "train" / "single_face.mp4", main_face_only=True)
    want = np.array([bool(f.faces) for f in frames])
    np.testing.assert_array_equal(single.has_face, want)
    crop = single.crop_path(int(np.flatnonzero(want)[0]))
    assert crop is not None and crop.name == f"{np.flatnonzero(want)[0] + 1:05d}.jpg"
    from affectseq.data.frames import read_image_rgb

    first = next(f.faces[0] for f in frames if f.faces)
    got = read_image_rgb(crop)
    assert got.shape == (112, 112, 3) and np.abs(got.astype(int) - first.crop).mean() < 4  # JPEG q95

    pan = AbawDataset(exported).videos("EXPR", "validation")[0]
    named = {f.frame_idx for f in _stream_frames(dataset / "validation" / "multi_face_pan.mp4", False)
             for face in f.faces if face.face_id == 2 and f.frame_idx % 2 == 0}  # the CSV names frames 0, 2, ...
    assert set(np.flatnonzero(pan.has_face)) == named and named


def test_rerun_skips_finished_videos(dataset, exported) -> None:
    crop_dir = exported / "cropped_aligned" / "single_face"
    before = {p.name: p.stat().st_mtime_ns for p in crop_dir.iterdir()}
    report = export_face_crops(dataset, exported, progress=False)
    assert (report.written, report.skipped, report.failures) == (0, 2, [])
    assert {p.name: p.stat().st_mtime_ns for p in crop_dir.iterdir()} == before
    assert len(list((exported / MARKER_DIR).glob("*.json"))) == 2


def test_a_bad_video_fails_alone(dataset, clips_dir, tmp_path, capsys) -> None:
    root = tmp_path / "mixed"
    shutil.copytree(dataset, root)
    # Its index comes first, so the cut file opens (and is planned) and breaks off after a few frames.
    bad = root / "train" / "broken.mp4"
    bad.write_bytes((clips_dir / "WolfgangLanger_Pexels.mp4").read_bytes()[:60_000])
    _write_csv(root / "train" / "broken.csv", 1, seed=0)
    out = tmp_path / "out"
    code = main(["data", "faces", str(root), "--out", str(out), "--workers", "2", "--no-progress"])
    printed = capsys.readouterr().out
    markers = sorted(p.stem for p in (out / MARKER_DIR).glob("*.json"))
    assert code == 1 and "failed: " in printed and "broken.mp4" in printed.split("failed: ")[1]
    assert "truncated" in printed
    assert markers == ["multi_face_pan", "single_face"]
    assert not (out / "cropped_aligned" / "broken").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".affectseq-partial")]


def test_left_and_right_take_the_faces_of_their_half() -> None:
    seen = [(0, 0, 100.0, 50.0), (0, 1, 400.0, 300.0), (0, 2, 25.0, 120.0),  # face 2: small, left half
            (1, 0, 100.0, 52.0), (1, 2, 900.0, 110.0), (2, 1, 400.0, 310.0)]
    assert side_faces(seen, width=400) == {"left": {0: 0, 1: 2}, "right": {0: 1, 2: 1}}


def test_output_inside_the_dataset_is_refused(dataset) -> None:
    assert main(["data", "faces", str(dataset), "--out", str(dataset / "crops")]) != 0
    assert not (dataset / "crops").exists()


def test_marker_records_counts_and_options(exported) -> None:
    marker = json.loads((exported / MARKER_DIR / "single_face.json").read_text())
    assert marker["options"]["detect_every"] == 8 and marker["video_ids"] == ["single_face"]
    assert marker["crops"]["single_face"] == len(list((exported / "cropped_aligned" / "single_face").glob("*.jpg")))


def test_crop_folders_record_their_videos_fps(dataset, exported, clips_dir, caplog) -> None:
    """The crop tree holds no raw video: each crop folder records its video's rate, AbawDataset reads it,
    and the store's ``dataset_video_fps`` takes it without warning."""
    from affectseq.features.video_fps import dataset_video_fps
    from affectseq.io.video import probe_video

    out = AbawDataset(exported)
    rates = {v.video_id: v.fps for split in out.splits("VA") for v in out.videos("VA", split)}
    want = {"single_face": probe_video(clips_dir / "single_face.mp4").fps,
            "multi_face_pan": probe_video(clips_dir / "multi_face_pan.mp4").fps}
    assert rates == want and all(fps > 0 for fps in want.values())
    with caplog.at_level("WARNING"):
        assert dataset_video_fps(out) == want
    assert "no known frame rate" not in caplog.text


def test_abaw_crops_take_fps_from_the_trees_videos_else_unknown_said_once(tmp_path, caplog) -> None:
    from affectseq.config import load_config
    from affectseq.data.synth import SynthConfig, generate
    from affectseq.features.video_fps import dataset_video_fps
    from affectseq.io.video import probe_video

    cfg = load_config(SynthConfig, overrides={"n_videos": 2, "n_frames": 12, "seed": 3})
    generate(tmp_path / "abaw", cfg, workers=1, show_progress=False)  # ABAW crops + raw videos in the tree
    videos = sorted((tmp_path / "abaw").rglob("*.mp4"))
    assert len(videos) == 2
    rates = dataset_video_fps(AbawDataset(tmp_path / "abaw"))
    assert len(rates) == 3 and set(rates.values()) == {probe_video(videos[0]).fps}  # _left/_right share one
    for video in videos:
        video.unlink()
    with caplog.at_level("WARNING"):
        rates = dataset_video_fps(AbawDataset(tmp_path / "abaw"))
    assert len(rates) == 3 and set(rates.values()) == {None}
    assert caplog.text.count("no known frame rate") == 1 and "3 of 3 videos" in caplog.text


def test_abaw_tree_with_raw_videos_only(tmp_path) -> None:
    """An Aff-Wild2-like tree without crops (synthetic, with a two-person video): annotation files are
    copied, every annotated person (``_left``/``_right`` too) gets its crop folder."""
    from affectseq.config import load_config
    from affectseq.data.synth import SynthConfig, generate

    src = tmp_path / "affwild"
    cfg = load_config(SynthConfig, overrides={"n_videos": 2, "n_frames": 24, "seed": 3, "write_crops": False})
    generate(src, cfg, workers=1, show_progress=False)
    report = export_face_crops(src, tmp_path / "out", progress=False)
    assert (report.written, report.failures) == (2, [])
    want, got = AbawDataset(src), AbawDataset(tmp_path / "out", strict=True)
    assert got.layout == "abaw6" and got.tasks == want.tasks
    ids = set()
    for task in want.tasks:
        for split in want.splits(task):
            for a, b in zip(want.videos(task, split), got.videos(task, split), strict=True):
                assert a.video_id == b.video_id
                np.testing.assert_array_equal(a.labels, b.labels)
                ids.add(a.video_id)
    assert any(i.endswith("_left") for i in ids) and any(i.endswith("_right") for i in ids)
    assert all((tmp_path / "out" / "cropped_aligned" / i).is_dir() for i in ids)
