"""A new output file is one writer: registered from outside affectseq, it works end to end in predict.

Before, adding an output touched OutputOptions, write_video_outputs, cli/predict.py, cli/demo.py, serve/runner.py
and serve/app.py. Here a toy writer (``labels.txt``: one line per frame with a face, its label) is registered from
this test module only, and ``predict`` (API, CLI, ``--workers``), the fingerprint and ``serve``'s result routes
pick it up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from affectseq.errors import ConfigError
from affectseq.predict.engines import run_batch
from affectseq.predict.pipeline import PredictOptions
from affectseq.predict.writers import (BatchWriter, OutputOptions, OutputWriter, output_writers,
                                       register_batch_output, register_output, unregister_batch_output,
                                       unregister_output)
from affectseq.utils.params import Boolean, Param

from test_predict_helpers import ScriptedFaces, box_crops, brightness_bundle, gray_frames, save_tiny_frame_model, write_video

TOY_FILE = "labels.txt"


def write_labels(job) -> None:
    """The toy writer: ``frame_idx label`` per face row with a label (a module-level function: it pickles)."""
    rows = job.prediction.table.dropna(subset=["label"])
    lines = [f"{int(f)} {label}" for f, label in zip(rows["frame_idx"], rows["label"])]
    (job.out_dir / TOY_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


TOY = OutputWriter("labels", write_labels, files={TOY_FILE: "text/plain"}, switch="labels",
                   params={"labels": Param(True, Boolean(), "write labels.txt, the label of each frame")})


@pytest.fixture()
def toy_writer():
    register_output(TOY)
    yield TOY
    unregister_output(TOY.name)


def _video(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, gray_frames([40, 40, 200, 200, 120, 120]))


def _run(video: Path, out: Path, output: OutputOptions):
    return run_batch([video], out, brightness_bundle(), PredictOptions(progress=False), output,
                     face_source_factory=lambda: ScriptedFaces({1: (10.0, 10.0, 60.0, 60.0)}), aligner=box_crops)


def test_a_registered_writer_writes_its_file_and_is_fingerprinted(tmp_path: Path, toy_writer) -> None:
    video = _video(tmp_path / "in" / "clip.mp4")
    out = tmp_path / "out"
    assert [w.name for w in output_writers()][-2:] == ["labels", "summary"]  # summary.json stays last
    report = _run(video, out, OutputOptions(timeline=False))
    assert report.exit_code == 0, report.format()
    folder = out / "clip"
    table = pd.read_csv(folder / "frames.csv")
    lines = (folder / TOY_FILE).read_text().split()
    assert lines[::2] == [str(f) for f in table["frame_idx"]] and lines[1::2] == list(table["label"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(["frames.csv", TOY_FILE, "summary.json"])
    fingerprint = json.loads((folder / "summary.json").read_text())["fingerprint"]
    assert fingerprint["outputs"]["labels"] is True
    assert _run(video, out, OutputOptions(timeline=False)).count("skipped") == 1
    # Switched off: the fingerprint differs, the video is redone and the file is gone.
    redo = _run(video, out, OutputOptions(timeline=False, labels=False))
    assert redo.count("done") == 1 and "outputs labels: True -> False" in redo.outcomes[0].note
    assert not (folder / TOY_FILE).exists()


def test_options_check_the_writers_settings(toy_writer) -> None:
    with pytest.raises(ConfigError, match="labels must be true or false"):
        OutputOptions(labels="yes")
    with pytest.raises(ConfigError, match="unknown output setting"):
        OutputOptions(labelz=True)
    with pytest.raises(ConfigError, match="already registered"):
        register_output(TOY)
    with pytest.raises(ConfigError, match="already belong to overlay"):
        register_output(OutputWriter("other", write_labels, params={"keep_audio": Param(False, Boolean())}))
    assert OutputOptions().fingerprint() == {"table_format": "csv", "timeline": True, "overlay": False,
                                             "keep_audio": False, "labels": True}


def test_without_the_plugin_the_outputs_are_the_built_in_ones() -> None:
    """The fingerprint keys of the built-in writers are those of the old OutputOptions (old folders still match)."""
    assert OutputOptions().fingerprint() == {"table_format": "csv", "timeline": True, "overlay": False,
                                             "keep_audio": False}
    assert [w.name for w in OutputOptions(overlay=True).writers] == ["table", "timeline", "overlay", "summary"]


def test_the_cli_offers_the_writers_switch(tmp_path: Path, clips_dir: Path, toy_writer,
                                           capsys: pytest.CaptureFixture) -> None:
    from affectseq.cli import main
    from affectseq.io.video import VideoReader

    frames = [f.rgb for f, _ in zip(VideoReader(clips_dir / "single_face.mp4"), range(4))]
    video = write_video(tmp_path / "face.mp4", frames, fps=24)
    model = save_tiny_frame_model(tmp_path / "tiny.safetensors")
    common = ["--model", str(model), "--detector", "haar", "--no-progress", "--no-timeline"]
    assert main(["predict", str(video), "-o", str(tmp_path / "on"), *common]) == 0
    assert main(["predict", str(video), "-o", str(tmp_path / "off"), *common, "--no-labels"]) == 0
    assert (tmp_path / "on" / "face" / TOY_FILE).is_file()
    assert sorted(p.name for p in (tmp_path / "off" / "face").iterdir()) == ["frames.csv", "summary.json"]
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "--no-labels" in capsys.readouterr().out


def test_serve_offers_the_writers_file(toy_writer) -> None:
    from affectseq.serve.app import result_files

    assert result_files()[TOY_FILE] == (TOY_FILE, "text/plain")
    assert {"frames.csv", "summary.json", "timeline.png", "overlay.mp4"} <= set(result_files())


def write_index(out_root: Path, outcomes) -> Path:
    """A toy batch writer: ``index.txt``, one line per input video, its status and folder."""
    path = out_root / "index.txt"
    path.write_text("".join(f"{o.video.name} {o.status} {o.out_dir.name}\n" for o in outcomes), encoding="utf-8")
    return path


def test_a_registered_batch_writer_gets_every_outcome_in_input_order(tmp_path: Path) -> None:
    register_batch_output(BatchWriter("index", write_index))
    try:
        videos = [_video(tmp_path / "in" / f"{n}.mp4") for n in ("b", "a")]
        missing = tmp_path / "in" / "gone.mp4"
        out = tmp_path / "out"
        report = run_batch([videos[0], missing, videos[1]], out, brightness_bundle(), PredictOptions(progress=False),
                           OutputOptions(timeline=False),
                           face_source_factory=lambda: ScriptedFaces({1: (10.0, 10.0, 60.0, 60.0)}), aligner=box_crops)
    finally:
        unregister_batch_output("index")
    assert report.files == {"index": out / "index.txt"}
    assert (out / "index.txt").read_text().splitlines() == ["b.mp4 done b", "gone.mp4 failed gone", "a.mp4 done a"]


@pytest.mark.slow
def test_worker_processes_write_the_plugin_file(tmp_path: Path, clips_dir: Path, toy_writer) -> None:
    """``--workers``: the writers travel with the options to spawned processes that never registered them."""
    from affectseq.io.video import VideoReader
    from affectseq.scale.predict_shards import ModelRequest, predict_parallel

    frames = [f.rgb for f, _ in zip(VideoReader(clips_dir / "single_face.mp4"), range(4))]
    (tmp_path / "in").mkdir()
    videos = [write_video(tmp_path / "in" / f"v{i}.mp4", frames, fps=24) for i in range(2)]
    model = ModelRequest(str(save_tiny_frame_model(tmp_path / "tiny.safetensors")), backend="torch", device="cpu")
    report = predict_parallel(videos, tmp_path / "out", model, PredictOptions(detector="haar", progress=False),
                              OutputOptions(timeline=False), workers=2)
    assert report.count("done") == 2, report.format()
    for video in videos:
        assert (tmp_path / "out" / video.stem / TOY_FILE).is_file()
