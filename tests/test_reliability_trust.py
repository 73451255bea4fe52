"""Issue #22, second adversarial pass: special files, planted symlinks, users' own files in result folders.

Each test reproduces a case that broke a promise of docs/reliability.md on b43f994 (it fails there) with the
known-answer brightness stage and scripted faces (fast, in-process), or the real CLI where the one-line
message is the point.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from affectseq.cli import main
from affectseq.errors import InputError
from affectseq.predict.engines import run_batch
from affectseq.predict.writers import OutputOptions
from affectseq.predict.pipeline import PredictOptions
from affectseq.utils.lock import LOCK_FILE

from test_predict_helpers import ScriptedFaces, box_crops, brightness_bundle, gray_frames, write_video

OPTIONS = PredictOptions(progress=False)


def _run(inputs, out: Path, output: OutputOptions = OutputOptions(timeline=False), **kwargs):
    return run_batch(inputs, out, brightness_bundle(), OPTIONS, output,
                     face_source_factory=lambda: ScriptedFaces({1: (10.0, 10.0, 60.0, 60.0)}),
                     aligner=box_crops, **kwargs)


def _video(path: Path, level: int = 90, n: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, gray_frames([level] * n))


def _in_thread(fn, timeout_sec: float, unblock: list[Path]):
    """Run ``fn`` in a thread; ``(finished, result)``. On a timeout, open each FIFO of ``unblock`` for
    writing so a reader stuck in ``open`` gets EOF (the thread then ends instead of hanging the session)."""
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", fn()), daemon=True)
    thread.start()
    thread.join(timeout_sec)
    finished = not thread.is_alive()
    if not finished:
        for fifo in unblock:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        thread.join(30)
    return finished, box.get("result")


# -- 1. special files are checked with stat before any open; the rest of the batch runs ----------------------
def test_a_fifo_socket_or_folder_named_like_a_video_is_one_line_and_the_batch_goes_on(tmp_path: Path) -> None:
    """A FIFO hung ``predict`` for ever in ``source_fingerprint`` (before any "is it a file" check), holding
    the output lock, and the good video beside it was never processed."""
    inputs = tmp_path / "in"
    good = _video(inputs / "good.mp4")
    fifo = inputs / "pipe.mp4"
    os.mkfifo(fifo)
    sock_path = inputs / "sock.mp4"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        out = tmp_path / "out"
        finished, report = _in_thread(lambda: _run([fifo, sock_path, good], out), 60, [fifo])
        assert finished, "predict blocked on a FIFO input"
        assert [o.status for o in report.outcomes] == ["failed", "failed", "done"], report.format()
        assert "FIFO" in report.outcomes[0].message and "socket" in report.outcomes[1].message
        assert all("\n" not in o.message for o in report.outcomes)
        # The same files found inside a folder: reported (not silently skipped), the good video skipped as done.
        finished, report = _in_thread(lambda: _run([inputs], tmp_path / "out2"), 60, [fifo])
        assert finished and sorted(o.status for o in report.outcomes) == ["done", "failed", "failed"]
    finally:
        sock.close()


def test_a_character_device_input_is_refused_without_opening_it(tmp_path: Path) -> None:
    report = _run([Path("/dev/zero"), _video(tmp_path / "v.mp4")], tmp_path / "out")
    assert [o.status for o in report.outcomes] == ["failed", "done"]
    assert "character device" in report.outcomes[0].message


# -- 2. links planted in output trees are never written through ----------------------------------------------
def test_a_symlink_planted_as_the_lock_file_is_refused_and_its_target_untouched(tmp_path: Path, capsys) -> None:
    """``lock._try_flock`` opened with O_CREAT and without O_NOFOLLOW: it truncated the link's target,
    wrote the holder record into it, and removed the link on release."""
    victim = tmp_path / "precious.txt"
    victim.write_text("the user's data\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).symlink_to(victim)
    video = _video(tmp_path / "in" / "v.mp4")
    with pytest.raises(InputError, match="symbolic link"):
        _run([video], out)
    assert victim.read_text() == "the user's data\n"
    assert (out / LOCK_FILE).is_symlink()
    assert main(["predict", str(video), "-o", str(out), "--detector", "haar", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "symbolic link" in err[0] and LOCK_FILE in err[0]
    assert victim.read_text() == "the user's data\n"


def test_a_link_planted_in_a_feature_store_is_never_written_through(tmp_path: Path) -> None:
    """``OUT/videos -> elsewhere`` sent every feature file and commit marker outside the store."""
    from affectseq.features.store_writer import StoreWriter

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    store = tmp_path / "store"
    store.mkdir()
    (store / "videos").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InputError, match="symbolic link"):
        StoreWriter(store, feature_dim=4, encoder={"name": "x"}, checkpoint_sha256="0" * 64)
    assert list(elsewhere.iterdir()) == []


def test_a_link_planted_in_a_data_faces_tree_is_never_written_through(tmp_path: Path) -> None:
    """``data faces``: ``OUT/crops -> elsewhere`` wrote the crops (and markers) outside the output tree."""
    from affectseq.data.crop_export import CROP_ROOT
    from affectseq.prepare.face_crops import MARKER_DIR, export_face_crops

    dataset = tmp_path / "videos"
    _video(dataset / "a.mp4")
    (dataset / "a.csv").write_text("frame_idx,expression\n0,happy\n1,sad\n")
    for planted in (CROP_ROOT, MARKER_DIR):
        out = tmp_path / f"out-{planted}"
        elsewhere = tmp_path / f"elsewhere-{planted}"
        elsewhere.mkdir()
        out.mkdir()
        (out / planted).symlink_to(elsewhere, target_is_directory=True)
        with pytest.raises(InputError, match="symbolic link"):
            export_face_crops(dataset, out, progress=False)
        assert list(elsewhere.iterdir()) == []


def test_atomic_writes_replace_a_planted_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    from affectseq.utils.atomic import atomic_path, write_json_atomic

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / "manifest.json"
    link.symlink_to(victim)
    write_json_atomic(link, {"a": 1})
    assert victim.read_text() == "keep" and not link.is_symlink() and json.loads(link.read_text()) == {"a": 1}
    with atomic_path(tmp_path / "out" / "x.bin") as tmp:
        assert oct(os.stat(tmp.parent).st_mode & 0o777) == oct(0o700)  # nobody else can plant anything there
        tmp.write_bytes(b"1")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json", "x.bin"]


# -- 3. a redo replaces only what affectseq wrote --------------------------------------------------------------
def test_a_redo_keeps_the_files_a_user_added_to_a_result_folder(tmp_path: Path) -> None:
    """``publish_dir`` moved the old folder aside and rmtree'd it: a user's ``my_notes.txt`` was gone."""
    video = _video(tmp_path / "in" / "v.mp4")
    out = tmp_path / "out"
    assert _run([video], out, OutputOptions(timeline=True)).count("done") == 1
    folder = out / "v"
    (folder / "my_notes.txt").write_text("mine")
    (folder / "extra").mkdir()
    (folder / "extra" / "plot.png").write_bytes(b"png")
    report = _run([video], out, OutputOptions(timeline=False, table_format="csv"))  # other options: a redo
    assert report.count("done") == 1 and "redone" in report.outcomes[0].note
    assert (folder / "my_notes.txt").read_text() == "mine" and (folder / "extra" / "plot.png").is_file()
    assert not (folder / "timeline.png").exists()  # ours, no longer asked for
    assert sorted(json.loads((folder / "summary.json").read_text())["files"]) == ["frames.csv", "summary.json"]
    assert sorted(p.name for p in out.iterdir()) == ["v"]  # no temporary folder left


def test_a_redo_refuses_to_replace_a_user_file_named_like_an_output(tmp_path: Path) -> None:
    """The user's own ``timeline.png`` in a folder whose run wrote none is theirs: one line, left as it was."""
    video = _video(tmp_path / "in" / "v.mp4")
    out = tmp_path / "out"
    _run([video], out)
    (out / "v" / "timeline.png").write_bytes(b"the user's own picture")
    report = _run([video], out, OutputOptions(timeline=True))
    assert report.count("failed") == 1, report.format()
    assert "timeline.png" in report.outcomes[0].message and "not written by affectseq" in report.outcomes[0].message
    assert (out / "v" / "timeline.png").read_bytes() == b"the user's own picture"
    assert (out / "v" / "summary.json").is_file() and sorted(p.name for p in out.iterdir()) == ["v"]


# -- 4. deep or huge model headers ------------------------------------------------------------------------------
def _model_with_header(path: Path, header_json: str) -> Path:
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(path), metadata={"affectseq": header_json})
    return path


@pytest.mark.parametrize("header", ["[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000,
                                    '{"version": 2, "x": "' + "y" * (2 << 20) + '"}', '{"version": NaN}',
                                    '{"version": 1e999}', '{"version": ' + "9" * 5000 + "}"])
def test_deep_huge_or_non_finite_headers_are_one_line_in_predict_and_serve(tmp_path: Path, capsys,
                                                                          header: str) -> None:
    """5000 nested brackets printed a 38-line RecursionError traceback in predict and at serve start-up."""
    model = _model_with_header(tmp_path / "deep.safetensors", header)
    video = _video(tmp_path / "v.mp4")
    assert main(["predict", str(video), "-o", str(tmp_path / "out"), "--model", str(model), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deep.safetensors" in err[0] and "not an affectseq" in err[0], err
    pytest.importorskip("fastapi")
    assert main(["serve", "--model", str(model), "--data-dir", str(tmp_path / "data"), "--port", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deep.safetensors" in err[0], err


# -- 5. non-finite numbers are refused or reported as what they are, never "no face" ----------------------------
def _tiny_model_with(tmp_path: Path, value: float, tasks=("expr",)) -> Path:
    """The tiny test model with ``value`` (NaN, inf) written into its head weights."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from test_predict_helpers import save_tiny_frame_model

    path = save_tiny_frame_model(tmp_path / "tiny.safetensors", tasks=tasks)
    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata()
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    heads = [k for k in tensors if "head" in k and tensors[k].is_floating_point()]
    assert heads, sorted(tensors)
    for key in heads:
        tensors[key] = tensors[key].clone().fill_(value)
    bad = tmp_path / "broken.safetensors"
    save_file(tensors, str(bad), metadata=metadata)
    return bad


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_model_with_non_finite_weights_is_refused_in_one_line(tmp_path: Path, capsys, value: float) -> None:
    """NaN head weights: "72 with a face", then "no face found", "1 done", exit 0, empty probabilities --
    and the next run skipped the video as up to date."""
    model = _tiny_model_with(tmp_path, value)
    video = _video(tmp_path / "v.mp4")
    args = ["predict", str(video), "-o", str(tmp_path / "out"), "--model", str(model), "--no-progress",
            "--detector", "haar", "--backend", "torch"]
    for _ in range(2):  # and never skipped as up to date afterwards
        assert main(args) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "broken.safetensors" in err[0] and "not finite" in err[0], err
        assert not (tmp_path / "out" / "v").exists()


class _NonFiniteStage:
    """A frame stage whose ``key`` output is NaN or inf (weights look fine, outputs do not)."""

    def __init__(self, key: str, value: float):
        self.key, self.value = key, value

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        out = {"expr_prob": np.full((len(crops), 7), 1 / 7, np.float32), "va": np.zeros((len(crops), 2), np.float32)}
        out[self.key][:, 0] = self.value
        return out


@pytest.mark.parametrize("key, value", [("expr_prob", float("nan")), ("expr_prob", float("inf")),
                                        ("va", float("nan")), ("va", float("-inf"))])
def test_non_finite_model_outputs_are_that_videos_one_line_failure(tmp_path: Path, key: str, value: float) -> None:
    from affectseq.labels import EXPR_CLASSES_7
    from affectseq.predict.stages import ModelBundle, ModelInfo, SmoothingTemporal

    info = ModelInfo(model_id="nan-model", kind="frame", classes=EXPR_CLASSES_7, has_va=True, source="m.safetensors")
    bundle = ModelBundle(frame_stage=_NonFiniteStage(key, value), temporal_stage=SmoothingTemporal(0.0), info=info)
    video = _video(tmp_path / "v.mp4")
    report = run_batch([video], tmp_path / "out", bundle, OPTIONS, OutputOptions(timeline=False),
                       face_source_factory=lambda: ScriptedFaces({1: (10.0, 10.0, 60.0, 60.0)}), aligner=box_crops)
    assert report.count("failed") == 1, report.format()
    message = report.outcomes[0].message
    assert "m.safetensors" in message and "non-finite" in message and key in message
    assert not (tmp_path / "out" / "v").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_non_finite_or_negative_smoothing_is_a_usage_error(tmp_path: Path, capsys, value: str) -> None:
    """``--smoothing-sec nan`` gave a silent "no face"; ``inf`` silently averaged whole tracks."""
    video = _video(tmp_path / "v.mp4")
    args = ["predict", str(video), "-o", str(tmp_path / "out"), f"--smoothing-sec={value}", "--no-progress"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--smoothing-sec" in err and "finite number" in err
    assert not (tmp_path / "out" / "v").exists()


def test_the_api_refuses_non_finite_smoothing_in_one_line() -> None:
    from affectseq.errors import ConfigError
    from affectseq.predict.model import load_model

    for value in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ConfigError, match="--smoothing-sec must be a finite number >= 0"):
            load_model("default", smoothing_sec=value)


# -- 6. label CSVs separated by semicolons -----------------------------------------------------------------------
def test_a_semicolon_separated_label_csv_is_read(tmp_path: Path) -> None:
    """Spreadsheets in many locales save ';': the video was dropped with a note and "0 failed"."""
    from affectseq.data.video_csv import VideoCsvDataset

    root = tmp_path / "videos"
    _video(root / "a.mp4", n=4)
    (root / "a.csv").write_text("frame_idx;expression;valence;arousal\n0;happy;0,5;-0,25\n2;sad;;\n")
    data = VideoCsvDataset(root, strict=True)
    (expr,) = data.videos("EXPR", "videos")
    assert expr.labels.tolist()[:3] == [4, -1, 5]  # Aff-Wild2 order: Happiness 4, Sadness 5
    (va,) = data.videos("VA", "videos")
    np.testing.assert_allclose(va.labels[0], [0.5, -0.25])
    assert data.warnings == []


def test_a_data_faces_redo_keeps_the_users_files_in_a_crop_folder(tmp_path: Path, clips_dir: Path) -> None:
    """``data faces`` redone with other options replaced the whole crop folder: a user's file in it was lost."""
    import shutil

    from affectseq.data.crop_export import CROP_ROOT
    from affectseq.prepare.face_crops import export_face_crops
    from affectseq.prepare.video_crops import CropOptions

    dataset = tmp_path / "videos"
    dataset.mkdir()
    shutil.copy(clips_dir / "single_face.mp4", dataset / "a.mp4")
    (dataset / "a.csv").write_text("frame_idx,expression\n" + "".join(f"{f},happy\n" for f in range(0, 72, 9)))
    out = tmp_path / "out"
    assert export_face_crops(dataset, out, CropOptions(detector="haar"), progress=False).exit_code == 0
    (folder,) = (out / CROP_ROOT).iterdir()
    crops = sorted(p.name for p in folder.glob("*.jpg"))
    assert crops
    (folder / "my_notes.txt").write_text("mine")
    report = export_face_crops(dataset, out, CropOptions(detector="haar", jpeg_quality=60), progress=False)
    assert report.exit_code == 0 and report.written == 1, report
    assert (folder / "my_notes.txt").read_text() == "mine"
    assert sorted(p.name for p in folder.glob("*.jpg")) == crops


def test_a_fifo_named_as_a_label_csv_is_a_warning_not_a_hang(tmp_path: Path) -> None:
    from affectseq.data.video_csv import VideoCsvDataset

    root = tmp_path / "videos"
    _video(root / "a.mp4")
    _video(root / "b.mp4")
    (root / "a.csv").write_text("frame_idx,expression\n0,happy\n")
    os.mkfifo(root / "b.csv")
    finished, data = _in_thread(lambda: VideoCsvDataset(root), 60, [root / "b.csv"])
    assert finished, "reading the labels blocked on a FIFO"
    assert [v.video_id for v in data.videos("EXPR", "videos")] == ["a"]
    assert any("FIFO" in w.problem for w in data.warnings)


@pytest.mark.parametrize("mode, seq_mode", [("causal", "seq2one"), ("causal", "seq2seq"), ("offline", "seq2seq")])
def test_a_sequence_model_giving_nan_is_reported_not_left_blank(tmp_path: Path, mode: str, seq_mode: str) -> None:
    """A sequence model's NaN passed for "no face in the window" (its rows left without a prediction)."""
    import torch

    from affectseq.labels import EXPR_CLASSES_7
    from affectseq.models.temporal import TemporalConfig, TemporalModel
    from affectseq.predict.sequence import SequenceTemporal
    from affectseq.predict.stages import ModelBundle, ModelInfo

    model = TemporalModel(5, {"expr": 7, "va": 2}, TemporalConfig(hidden_sizes=(8,), mode=seq_mode)).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(float("nan"))
    info = ModelInfo(model_id="seq", kind="sequence", classes=EXPR_CLASSES_7, has_va=True, source="seq.safetensors")
    bundle = ModelBundle(frame_stage=lambda crops: {"features": np.ones((len(crops), 5), np.float32)},
                         temporal_stage=SequenceTemporal(model, 4), info=info)
    report = run_batch([_video(tmp_path / "v.mp4", n=8)], tmp_path / "out", bundle, PredictOptions(mode=mode,
                       progress=False), OutputOptions(timeline=False),
                       face_source_factory=lambda: ScriptedFaces({1: (10.0, 10.0, 60.0, 60.0)}), aligner=box_crops)
    assert report.count("failed") == 1, report.format()
    message = report.outcomes[0].message
    assert "seq.safetensors" in message and "temporal model gave non-finite outputs (NaN" in message
