"""``predict`` never loses, mixes up or silently reuses a user's results (issue #11, predict outputs).

Each test reproduces a bug users hit (failing on the code before the fix): output
folders escaping ``-o``, silent skips after a change, awkward file names, two runs on
one folder, exceptions of unusual types, SIGTERM and ``kill -9`` mid-batch.
Fast stand-ins where the test is not about faces or the model: the known-answer
brightness stage with scripted faces in-process; a tiny untrained model, Haar faces
and 12-frame clips in subprocesses. Time budget: about a minute on 2 shared cores.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from affectseq.cli import main
from affectseq.cli.predict import print_outcome
from affectseq.predict.engines import run_batch
from affectseq.predict.writers import OutputOptions
from affectseq.predict.pipeline import PredictOptions
from affectseq.scale.predict_shards import ModelRequest, predict_parallel
from affectseq.utils.lock import LOCK_FILE

from test_predict_helpers import (
    ScriptedFaces, box_crops, brightness_bundle, gray_frames, save_tiny_frame_model, write_video,
)

OPTIONS = PredictOptions(progress=False)


def _faces() -> ScriptedFaces:
    return ScriptedFaces({1: (10.0, 10.0, 60.0, 60.0)})


def _run(inputs, out: Path, bundle=None, options: PredictOptions = OPTIONS,
         output: OutputOptions = OutputOptions(timeline=False), **kwargs):
    return run_batch(inputs, out, bundle or brightness_bundle(), options, output,
                     face_source_factory=_faces, aligner=box_crops, **kwargs)


def _video(path: Path, level: int = 90, n: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, gray_frames([level] * n))


def _source(out_dir: Path) -> str:
    return json.loads((out_dir / "summary.json").read_text())["fingerprint"]["source"]["path"]


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".affectseq"))


# -- 1. names that cannot escape the output folder ------------------------------------------------------------
def test_a_dot_stem_never_writes_into_or_above_the_output_folder(tmp_path: Path) -> None:
    """``in/..mp4 -o out`` wrote into out/ itself, deleting earlier results; ``in/...mp4`` deleted out's parent."""
    top, out = tmp_path / "top", tmp_path / "top" / "out"
    earlier = _video(tmp_path / "in" / "earlier.mp4")
    assert _run([earlier], out).count("done") == 1
    (top / "users_notes.txt").write_text("not affectseq's")
    (out / "users_file.txt").write_text("not affectseq's either")
    for name in ("..mp4", "...mp4", ".mp4x.mp4"):
        report = _run([_video(tmp_path / "in" / name, level=200)], out)
        assert report.count("done") == 1, report.format()
        folder = report.outcomes[0].out_dir
        assert folder.parent == out and not folder.name.startswith(".")
        assert (folder / "summary.json").is_file()
    assert (top / "users_notes.txt").read_text() == "not affectseq's"
    assert (out / "users_file.txt").is_file() and (out / "earlier" / "summary.json").is_file()
    assert _leftovers(out) == []


def test_a_folder_affectseq_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "clip").mkdir(parents=True)
    (out / "clip" / "thesis.docx").write_text("the user's own work")
    (out / "link").symlink_to(tmp_path)  # a symlink named like an output folder: not ours either
    report = _run([_video(tmp_path / "in" / "clip.mp4"), _video(tmp_path / "in" / "link.mp4")], out,
                  overwrite=True)
    assert report.count("done") == 2
    assert (out / "clip" / "thesis.docx").read_text() == "the user's own work"
    assert (out / "link").is_symlink()
    for outcome in report.outcomes:
        assert outcome.out_dir.name.startswith(outcome.video.stem + "-")  # the hashed fallback name
        assert "did not write" in outcome.note


# -- 2. skip only what is really finished for this input ---------------------------------------------------------
def test_same_stem_from_another_folder_is_not_skipped_and_keeps_both(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    """``predict b/v.mp4 -o o`` then ``predict a/v.mp4 -o o`` said "1 skipped" and kept b's results for a."""
    a, b = _video(tmp_path / "a" / "v.mp4", level=40), _video(tmp_path / "b" / "v.mp4", level=200)
    out = tmp_path / "o"
    first = _run([b], out)
    second = _run([a], out)
    assert second.count("done") == 1 and second.count("skipped") == 0
    a_dir, b_dir = second.outcomes[0].out_dir, first.outcomes[0].out_dir
    assert a_dir != b_dir and _source(a_dir) == str(a.resolve()) and _source(b_dir) == str(b.resolve())
    assert str(b.resolve()) in second.outcomes[0].note  # said on the console, naming the other video
    # Reruns find each video's own folder, whatever else is in the run.
    for inputs in ([a], [b], [a, b], [b, a]):
        again = _run(inputs, out)
        assert again.count("skipped") == len(inputs), again.format()
        assert {o.out_dir for o in again.outcomes} <= {a_dir, b_dir}


def test_same_stem_in_one_run_gets_two_folders(tmp_path: Path) -> None:
    a, b = _video(tmp_path / "a" / "v.mp4", level=40), _video(tmp_path / "b" / "v.mp4", level=200)
    report = _run([a, b], tmp_path / "o")
    assert report.count("done") == 2 and len({o.out_dir for o in report.outcomes}) == 2
    assert {_source(o.out_dir) for o in report.outcomes} == {str(a.resolve()), str(b.resolve())}


@pytest.mark.parametrize("change", ["detect_every", "stride", "format", "overlay", "timeline", "model",
                                    "smoothing", "faces", "source"])
def test_a_rerun_with_any_change_redoes_the_video_and_says_why(tmp_path: Path, change: str) -> None:
    """Changing --model, --format, --overlay, --detect-every or smoothing used to print "skipped"."""
    video = _video(tmp_path / "in" / "v.mp4")
    out = tmp_path / "out"
    assert _run([video], out).count("done") == 1
    assert _run([video], out).count("skipped") == 1  # nothing changed: skipped
    kwargs: dict = {}
    if change == "detect_every":
        kwargs["options"] = PredictOptions(progress=False, detect_every=3)
    elif change == "stride":
        kwargs["options"] = PredictOptions(progress=False, stride=2)
    elif change == "format":
        kwargs["output"] = OutputOptions(timeline=False, table_format="parquet")
    elif change == "overlay":
        kwargs["output"] = OutputOptions(timeline=False, overlay=True)
    elif change == "timeline":
        kwargs["output"] = OutputOptions(timeline=True)
    elif change in ("model", "smoothing"):
        bundle = brightness_bundle()
        if change == "model":
            bundle.info.model_id, bundle.info.sha256 = "other.safetensors", "ab" * 32
        else:
            bundle.info.temporal = "moving average of per-frame outputs over 1 s per face track"
        kwargs["bundle"] = bundle
    elif change == "faces":
        kwargs["face_source_factory"] = lambda: ScriptedFaces({1: (0.0, 0.0, 50.0, 50.0)})
    else:
        time.sleep(0.01)
        _video(video, level=200)  # the same path, another content
    if change == "faces":
        report = run_batch([video], out, brightness_bundle(), OPTIONS, OutputOptions(timeline=False),
                           aligner=box_crops, **kwargs)
    else:
        report = _run([video], out, **kwargs)
    outcome = report.outcomes[0]
    assert outcome.status == "done" and outcome.out_dir == out / "v" and "redone:" in outcome.note, report.format()
    assert _run([video], out, **{k: v for k, v in kwargs.items() if k != "face_source_factory"}).count(
        "skipped") == (0 if change == "faces" else 1)


def test_cli_says_what_it_skipped_and_what_it_redid(tmp_path: Path, clips_dir: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    """The real model path: --smoothing-sec and --model reach the fingerprint through load_model."""
    model = save_tiny_frame_model(tmp_path / "tiny.safetensors")
    other = save_tiny_frame_model(tmp_path / "other.safetensors", seed=1)
    clip = _short_clip(clips_dir, tmp_path / "in" / "face.mp4")
    base = ["predict", str(clip), "-o", str(tmp_path / "out"), "--detector", "haar", "--no-progress"]
    assert main(base + ["--model", str(model)]) == 0
    assert main(base + ["--model", str(model)]) == 0
    assert "0 done, 1 skipped" in capsys.readouterr().out
    assert main(base + ["--model", str(model), "--smoothing-sec", "0"]) == 0
    printed = capsys.readouterr().out
    assert "1 done, 0 skipped" in printed and "redone:" in printed and "temporal" in printed
    assert main(base + ["--model", str(other), "--smoothing-sec", "0"]) == 0
    printed = capsys.readouterr().out
    assert "1 done, 0 skipped" in printed and "sha256" in printed


def _short_clip(clips_dir: Path, dst: Path, n: int = 12) -> Path:
    """The first ``n`` frames of single_face.mp4, re-encoded (a real face, a fraction of the decode time)."""
    from affectseq.io.video import VideoReader

    dst.parent.mkdir(parents=True, exist_ok=True)
    frames = [f.rgb for f, _ in zip(VideoReader(clips_dir / "single_face.mp4"), range(n))]
    return write_video(dst, frames, fps=24)


# -- 3. any file name works ----------------------------------------------------------------------------------
AWKWARD = ["a$_b_$c", "clip[1]", "a[/x]b", "[bold]x", "x", "x.y", "100%", "it's \"quoted\"", "my video",
           "😀 日本語 vidéo", "-rf", "x" * 245, "\udcff\udcfe latin1", "a:b"]


def test_awkward_names_all_work_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    """``a$_b_$c`` failed in matplotlib, a 245-character name with ENAMETOOLONG, ``a:b`` in FFmpeg, ``a[/x]b``
    in the progress bar; ``x`` and ``x.y`` must not clash."""
    src = tmp_path / "in"
    for i, stem in enumerate(AWKWARD):
        _video(src / f"{stem}.mp4", level=30 + 15 * i, n=3)
    monkeypatch.chdir(src)  # relative names: "a:b.mp4" reads as an FFmpeg protocol unless made absolute
    inputs = [f"{stem}.mp4" for stem in AWKWARD]
    report = _run(inputs, tmp_path / "out", options=PredictOptions(progress=True),  # the bar draws the names
                  output=OutputOptions(timeline=True), on_outcome=print_outcome)
    assert report.count("done") == len(AWKWARD), report.format()
    folders = {o.out_dir for o in report.outcomes}
    assert len(folders) == len(AWKWARD) and all(f.parent == tmp_path / "out" for f in folders)
    for outcome in report.outcomes:
        assert {p.name for p in outcome.out_dir.iterdir()} == {"frames.csv", "summary.json", "timeline.png"}
        assert _source(outcome.out_dir) == str((src / outcome.video).resolve())
        assert len(outcome.out_dir.name.encode()) <= 120
    printed = capsys.readouterr()
    assert "a$_b_$c" in printed.out and "😀 日本語 vidéo" in printed.out and "[bold]x" in printed.err + printed.out
    again = _run(inputs, tmp_path / "out", output=OutputOptions(timeline=True))
    assert again.count("skipped") == len(AWKWARD), again.format()


def test_awkward_names_on_the_command_line(tmp_path: Path, clips_dir: Path, capsys: pytest.CaptureFixture) -> None:
    model = save_tiny_frame_model(tmp_path / "tiny.safetensors")
    clip = _short_clip(clips_dir, tmp_path / "in" / "--help $x$ [red]é.mp4", n=6)
    rc = main(["predict", "-o", str(tmp_path / "out"), "--model", str(model), "--detector", "haar", "--no-progress",
               "--", str(clip)])
    printed = capsys.readouterr().out
    assert rc == 0 and "1 done" in printed and "--help $x$ [red]é.mp4" in printed
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    assert folder.name.startswith("__help $x$ [red]é-")
    assert sorted(pd.read_csv(folder / "frames.csv")["frame_idx"].unique()) == list(range(6))


# -- 5. one bad video never sinks the batch ------------------------------------------------------------------
class Weird(BaseException):
    """Not an Exception subclass: escaped the old per-video handler."""


class Mute(Exception):
    def __str__(self) -> str:
        raise RuntimeError("even printing this fails")


FAILURES = {"keyerror": KeyError("frame_idx"), "assertion": AssertionError(), "weird": Weird("deep trouble"),
            "mute": Mute(), "zero": ZeroDivisionError("division by zero"), "stop": StopIteration(),
            "multiline": RuntimeError("first line\nsecond line")}


def test_exceptions_of_any_type_fail_only_their_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    from affectseq.predict import batch

    real = batch.predict_video_table

    def flaky(video, *args, **kwargs):
        error = FAILURES.get(Path(video).stem)
        if error is not None:
            raise error
        return real(video, *args, **kwargs)

    monkeypatch.setattr(batch, "predict_video_table", flaky)
    videos = [_video(tmp_path / "in" / f"{name}.mp4") for name in ["good1", *FAILURES, "good2"]]
    out = tmp_path / "out"
    report = _run(videos, out, on_outcome=print_outcome)
    assert report.count("done") == 2 and report.count("failed") == len(FAILURES) and report.exit_code == 1
    messages = {o.video.stem: o.message for o in report.outcomes if o.status == "failed"}
    for name, error in FAILURES.items():
        assert "\n" not in messages[name] and messages[name].startswith(str(tmp_path / "in" / name))
        assert type(error).__name__ in messages[name]
    assert messages["weird"].endswith("Weird: deep trouble") and messages["multiline"].endswith("first line")
    assert sorted(p.name for p in out.iterdir()) == ["good1", "good2"]  # no lock, no partial folders
    err = capsys.readouterr().err
    assert err.count("affectseq: error:") == len(FAILURES)


def test_ctrl_c_stops_the_batch_and_leaves_nothing_half_written(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from affectseq.predict import batch

    real = batch.write_video_outputs

    def interrupted(video, out_dir, *args, **kwargs):
        real(video, out_dir, *args, **kwargs)  # the temporary folder is complete...
        if video.stem == "second":
            raise KeyboardInterrupt  # ...when the user presses Ctrl-C
        return {}

    monkeypatch.setattr(batch, "write_video_outputs", interrupted)
    videos = [_video(tmp_path / "in" / f"{n}.mp4") for n in ("first", "second", "third")]
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        _run(videos, out)
    assert sorted(p.name for p in out.iterdir()) == ["first"]


# -- 4 and 5 across processes: two runs, SIGTERM, kill -9 -----------------------------------------------------
@pytest.fixture(scope="module")
def batch_inputs(tmp_path_factory: pytest.TempPathFactory, clips_dir: Path) -> tuple[Path, list[Path]]:
    """A tiny model and six 12-frame copies of a real face clip: a subprocess batch of a few seconds."""
    root = tmp_path_factory.mktemp("batch")
    model = save_tiny_frame_model(root / "tiny.safetensors")
    first = _short_clip(clips_dir, root / "in" / "v0.mp4")
    videos = [first]
    for i in range(1, 6):
        videos.append(root / "in" / f"v{i}.mp4")
        videos[-1].write_bytes(first.read_bytes())
    return model, videos


def _predict_cmd(model: Path, videos: list[Path], out: Path) -> list[str]:
    return [sys.executable, "-m", "affectseq", "predict", *map(str, videos), "-o", str(out), "--model", str(model),
            "--detector", "haar", "--no-progress", "--backend", "torch", "--device", "cpu"]


def _start(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_line(proc: subprocess.Popen, prefix: str, timeout: float = 180) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(prefix):
            return lines
    proc.kill()
    raise AssertionError(f"no line starting with {prefix!r}:\n{''.join(lines)}")


def _assert_only_complete_folders(out: Path, allow: list[str] = ()) -> set[str]:
    assert [n for n in _leftovers(out) if n not in allow] in ([], [LOCK_FILE])
    done = set()
    for folder in out.iterdir():
        if folder.is_dir() and folder.name not in allow:
            assert (folder / "summary.json").is_file() and (folder / "frames.csv").is_file(), folder
            done.add(folder.name)
    return done


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_stopped_mid_batch_then_rerun_completes(tmp_path: Path, batch_inputs, sig: signal.Signals) -> None:
    model, videos = batch_inputs
    out = tmp_path / "out"
    proc = _start(_predict_cmd(model, videos, out))
    _wait_for_line(proc, "done:")  # one video published, the next in progress
    proc.send_signal(sig)
    rest = proc.communicate(timeout=120)[0]
    if sig == signal.SIGTERM:  # like Ctrl-C: a clean stop, the lock released, no temporary folder
        assert proc.returncode == 130 and "interrupted" in rest, rest
        assert _leftovers(out) == []
    # kill -9 cannot clean up: a folder being written (in the writer thread) stays, hidden; the rerun removes it.
    partials = [] if sig == signal.SIGTERM else [n for n in _leftovers(out) if n.startswith(".affectseq-partial-")]
    finished = _assert_only_complete_folders(out, allow=partials)
    assert 1 <= len(finished) < len(videos)
    rerun = subprocess.run(_predict_cmd(model, videos, out), capture_output=True, text=True, timeout=300,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{len(videos) - len(finished)} done, {len(finished)} skipped" in rerun.stdout
    assert _assert_only_complete_folders(out) == {v.stem for v in videos} and _leftovers(out) == []


def test_a_second_run_on_the_same_folder_fails_clearly(tmp_path: Path, batch_inputs,
                                                       capsys: pytest.CaptureFixture) -> None:
    """Two runs on one folder: one used to die with FileNotFoundError on the other's temporary folder."""
    model, videos = batch_inputs
    out = tmp_path / "out"
    first = _start(_predict_cmd(model, videos, out))
    deadline = time.monotonic() + 120
    while not (out / LOCK_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    rc = main(["predict", str(videos[0]), "-o", str(out), "--model", str(model), "--detector", "haar",
               "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "in use by another affectseq run" in err[0]
    assert f"pid {first.pid}" in err[0] and str(out) in err[0]
    output = first.communicate(timeout=300)[0]
    assert first.returncode == 0 and f"{len(videos)} done" in output, output
    assert _assert_only_complete_folders(out) == {v.stem for v in videos}


# -- 5 with --workers: a crashed worker is one video's failure ----------------------------------------------
@dataclasses.dataclass(frozen=True)
class CrashingRequest(ModelRequest):
    """In pool workers only: ``crash.mp4`` kills its process (SIGKILL), ``weird.mp4`` raises a BaseException."""

    def load(self):
        import multiprocessing

        if multiprocessing.parent_process() is not None:
            from affectseq.predict import batch

            real = batch.predict_video_table

            def sabotaged(video, *args, **kwargs):
                if Path(video).stem == "crash":
                    os.kill(os.getpid(), signal.SIGKILL)
                if Path(video).stem == "weird":
                    raise Weird("deep trouble")
                return real(video, *args, **kwargs)

            batch.predict_video_table = sabotaged
        return brightness_bundle()


def test_workers_a_crashed_worker_fails_only_its_video(tmp_path: Path) -> None:
    """``--workers 2``: a worker killed mid-video (or an exception of any type) used to fail its whole shard
    (or, BrokenProcessPool, the whole batch)."""
    videos = [_video(tmp_path / "in" / f"{n}.mp4", n=2) for n in ("good1", "crash", "weird", "good2")]
    out = tmp_path / "out"
    options = PredictOptions(detector="haar", progress=False)
    report = predict_parallel(videos, out, CrashingRequest(), options, OutputOptions(timeline=False), workers=2)
    status = {o.video.stem: o for o in report.outcomes}
    assert len(report.outcomes) == 4 and report.exit_code == 1, report.format()
    assert status["good1"].status == status["good2"].status == "done"
    assert status["crash"].status == "failed" and "BrokenProcessPool" in status["crash"].message
    assert status["weird"].status == "failed" and status["weird"].message.endswith("Weird: deep trouble")
    assert sorted(p.name for p in out.iterdir()) == ["good1", "good2"]
    again = predict_parallel(videos, out, CrashingRequest(), options, OutputOptions(timeline=False), workers=2)
    assert again.count("skipped") == 2 and again.count("failed") == 2
