"""Batch prediction: bad inputs fail alone with one clear line, nothing half-written, reruns skip finished work."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from affectseq.errors import InputError
from affectseq.predict.batch import collect_videos, output_dirs
from affectseq.predict.engines import run_batch
from affectseq.predict.writers import OutputOptions
from affectseq.predict.model import load_model
from affectseq.predict.pipeline import PredictOptions

from test_predict_helpers import ScriptedFaces, box_crops, brightness_bundle, gray_frames, write_video

OPTIONS = PredictOptions(progress=False)


def _run(inputs, out: Path, overwrite: bool = False, output: OutputOptions = OutputOptions()):
    return run_batch(inputs, out, brightness_bundle(), OPTIONS, output, overwrite=overwrite,
                     face_source_factory=lambda: ScriptedFaces({1: (10.0, 10.0, 60.0, 60.0)}), aligner=box_crops)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory, clips_dir: Path) -> dict[str, Path]:
    import av

    root = tmp_path_factory.mktemp("bad")
    text = root / "notes.mp4"
    text.write_text("this is not a video\n")
    truncated = root / "truncated.mp4"
    data = (clips_dir / "single_face.mp4").read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 5])
    audio_only = root / "speech.m4a"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    zero = root / "zero_frames.mp4"
    with av.open(str(zero), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()  # header only: a video file with no frames
    return {"missing": root / "missing.mp4", "text": text, "truncated": truncated, "audio": audio_only,
            "zero": zero}


@pytest.fixture(scope="module")
def good_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("good") / "good.mp4", gray_frames([40] * 6 + [220] * 6))


def test_bad_files_fail_alone_with_one_line(bad_inputs: dict[str, Path], good_video: Path, tmp_path: Path) -> None:
    inputs = [bad_inputs["missing"], good_video, bad_inputs["text"], bad_inputs["truncated"],
              bad_inputs["audio"], bad_inputs["zero"]]
    report = _run(inputs, tmp_path / "out")
    status = {o.video.name: o for o in report.outcomes}
    assert status["good.mp4"].status == "done"
    assert report.count("failed") == 5 and report.exit_code == 1
    for name in ("missing.mp4", "notes.mp4", "truncated.mp4", "speech.m4a", "zero_frames.mp4"):
        outcome = status[name]
        assert outcome.status == "failed"
        assert name in outcome.message and "\n" not in outcome.message
        assert not outcome.out_dir.exists()  # nothing half-written
    assert "not found" in status["missing.mp4"].message
    assert "no video stream" in status["speech.m4a"].message
    leftovers = [p.name for p in (tmp_path / "out").iterdir()]
    assert leftovers == ["good"]  # no temporary folders either
    assert {p.name for p in (tmp_path / "out" / "good").iterdir()} == {"frames.csv", "summary.json", "timeline.png"}
    assert "1 done, 0 skipped" in report.format() and report.format().count("failed:") == 5


def test_rerun_skips_finished_unless_overwrite(good_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    stale = out / ".affectseq-partial-abc123"  # what a killed run leaves behind
    stale.mkdir(parents=True)
    (stale / "frames.csv").write_text("partial")
    assert _run([good_video], out).count("done") == 1
    assert not stale.exists() and [p.name for p in out.iterdir()] == ["good"]
    csv = out / "good" / "frames.csv"
    csv.write_text("sentinel")
    second = _run([good_video], out)
    assert second.count("skipped") == 1 and second.exit_code == 0 and csv.read_text() == "sentinel"
    third = _run([good_video], out, overwrite=True)
    assert third.count("done") == 1 and csv.read_text().startswith("frame_idx,")


def test_unwritable_output_dir(good_video: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="not writable") as err:
        _run([good_video], blocker / "out")
    assert str(blocker) in str(err.value)


def test_foreign_model_files_are_rejected(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    random_bytes = tmp_path / "weights.safetensors"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(plain))
    pickle = tmp_path / "model.pth"
    torch.save({"w": torch.zeros(3)}, pickle)
    for path in (random_bytes, plain, pickle, tmp_path / "absent.safetensors"):
        with pytest.raises(InputError) as err:
            load_model(path, device="cpu")
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_folders_expand_and_same_stems_get_distinct_dirs(good_video: Path, tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(good_video, folder / "clip.mp4")
    shutil.copy(good_video, folder / "clip.mov")
    shutil.copy(good_video, folder / "sub" / "other.mp4")
    (folder / "readme.txt").write_text("not a video, ignored inside folders")
    videos = collect_videos([folder])
    assert [v.name for v in videos] == ["clip.mov", "clip.mp4", "other.mp4"]
    # The first "clip" keeps the plain name; the second gets its path's hash (stable whatever else is in the run).
    dirs = [d.name for d in output_dirs(videos, tmp_path / "out")]
    assert dirs[0] == "clip" and dirs[1].startswith("clip-") and dirs[2] == "other" and len(set(dirs)) == 3
    report = _run([folder], tmp_path / "out")
    assert report.count("done") == 3
    assert [o.out_dir.name for o in report.outcomes] == dirs


def test_overlay_written_with_and_without_audio(tmp_path: Path) -> None:
    video = write_video(tmp_path / "talk.mp4", gray_frames([90] * 10), audio=True)
    import av

    for keep in (False, True):
        out = tmp_path / f"out_{keep}"
        report = _run([video], out, output=OutputOptions(overlay=True, keep_audio=keep))
        assert report.count("done") == 1
        with av.open(str(out / "talk" / "overlay.mp4")) as container:
            assert container.streams.video[0].frames == 10
            assert bool(container.streams.audio) == keep


def test_overlay_draws_the_predicted_class(tmp_path: Path) -> None:
    """Gray level 90 is class 2 (Disgust) for the known-answer stage: its colour must appear, Happiness' not."""
    import av

    from affectseq.predict.timeline import CLASS_COLORS

    video = write_video(tmp_path / "gray.mp4", gray_frames([90] * 3, size=(180, 320)))
    faces = lambda: ScriptedFaces({1: (200.0, 40.0, 300.0, 140.0)})  # noqa: E731
    report = run_batch([video], tmp_path / "out", brightness_bundle(), OPTIONS, OutputOptions(overlay=True),
                       face_source_factory=faces, aligner=box_crops)
    assert report.count("done") == 1
    with av.open(str(tmp_path / "out" / "gray" / "overlay.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)

    def near(hex_color: str) -> int:
        rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(frame - rgb).max(axis=2) < 30).sum())

    assert near(CLASS_COLORS["Disgust"]) > 300  # box, label tag and the full-length probability bar
    assert near(CLASS_COLORS["Happiness"]) == 0
