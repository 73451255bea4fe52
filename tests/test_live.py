"""``affectseq live`` and ``affectseq.live()``: rows equal to causal predict, bounded buffering, reconnects, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from affectseq.errors import InputError
from affectseq.predict import live_capture
from affectseq.predict.live_capture import Capture, CapturedFrame, FrameBuffer, LiveSource, parse_source
from affectseq.predict.live_session import LatencyHistogram

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bundle():
    from affectseq.predict.model import load_model

    return load_model("default")


def _frame(i: int) -> CapturedFrame:
    return CapturedFrame(i, i / 30, np.zeros((4, 4, 3), np.uint8), time.monotonic(), time.time())


def test_buffer_drops_the_oldest_and_counts() -> None:
    buffer = FrameBuffer(3)
    for i in range(10):
        buffer.put(_frame(i))
        assert len(buffer) <= 3
    assert (buffer.offered, buffer.dropped) == (10, 7)
    assert [buffer.get(0).frame_idx for _ in range(3)] == [7, 8, 9]  # the newest are kept, in order
    assert buffer.get(0.01) is None
    buffer.close()
    assert buffer.get() is None  # closed and empty: no wait


def test_latency_percentiles_are_exact_to_the_millisecond() -> None:
    hist = LatencyHistogram()
    assert hist.percentile(50) is None
    for ms in range(1, 101):  # 1..100 ms
        hist.add(ms / 1000)
    assert hist.percentile(50) == 50 and hist.percentile(95) == 95
    hist.add(3600.0)  # an hour: counted in the last bin, memory unchanged
    assert hist.counts.shape == (10_001,) and hist.percentile(100) == 10_000


def test_parse_source(clips_dir: Path) -> None:
    assert parse_source("0") == LiveSource("camera", "0", realtime=True)
    assert parse_source("rtsp://cam.local/stream").kind == "url"
    assert parse_source("HTTPS://x/y.m3u8").live
    clip = clips_dir / "single_face.mp4"
    assert not parse_source(str(clip)).live and parse_source(str(clip), realtime=True).live
    with pytest.raises(InputError, match="no such file, camera index or stream URL"):
        parse_source(str(clips_dir / "missing.mp4"))


class _BrokenContainer:
    """A stream that yields ``n`` frames, then breaks off with an FFmpeg error."""

    def __init__(self, n: int):
        import av

        self.n, self.error = n, av.error.FFmpegError(5, "Input/output error")
        self.streams = type("S", (), {"video": [type("V", (), {"average_rate": 25, "guessed_rate": None,
                                                              "base_rate": None})()]})()

    def decode(self, video: int = 0):
        import av

        for i in range(self.n):
            frame = av.VideoFrame(8, 8, "rgb24")
            frame.pts, frame.time_base = i, __import__("fractions").Fraction(1, 25)
            yield frame
        raise self.error

    def close(self) -> None:
        pass


def test_a_broken_stream_reconnects_with_one_line_per_retry_then_gives_up(monkeypatch) -> None:
    opened: list[int] = []

    def fake_open(source: LiveSource) -> _BrokenContainer:
        opened.append(1)
        if len(opened) == 3:  # the second reconnection fails to open at all
            raise InputError(source.describe(), "cannot open (Connection refused)")
        return _BrokenContainer(4)

    monkeypatch.setattr(live_capture, "_open_av", fake_open)
    events: list[str] = []
    capture = Capture(LiveSource("url", "rtsp://cam/x", True), buffer_frames=100, retries=3, retry_wait_sec=0.01,
                      on_event=events.append).start()
    got = []
    with pytest.raises(InputError, match="gave up after 3 reconnection attempts"):
        for frame in capture.frames():
            got.append(frame)
    assert len(opened) == 4  # the first open + 3 retries
    assert len(events) == 3 and all("reconnecting" in e for e in events), events
    assert "read failed" in events[0] and "(1/3)" in events[0] and "(3/3)" in events[2]
    assert "Connection refused" in events[2]  # the failed reopen is the reason of the next attempt
    # frame_idx and stream time keep counting over reconnections
    assert [f.frame_idx for f in got] == list(range(12))
    assert np.all(np.diff([f.time_sec for f in got]) > 0)


def test_live_rows_equal_causal_predict_on_every_frame(clips_dir: Path, bundle) -> None:
    """A file without --realtime: every frame, and rows equal to predict_video(mode="causal")."""
    import affectseq

    clip = clips_dir / "single_face.mp4"
    with affectseq.live(clip, bundle) as run:
        rows = list(run)
    offline = affectseq.predict_video(clip, bundle, mode="causal")
    assert [r["frame_idx"] for r in rows] == offline["frame_idx"].tolist()
    assert run.stats.offered == run.stats.processed == 72 and run.stats.dropped == 0
    assert [r["label"] for r in rows] == offline["label"].tolist()
    probs = [c for c in offline.columns if c.startswith("prob_")]
    assert np.allclose([[r[c] for c in probs] for r in rows], offline[probs].to_numpy(), atol=1e-6)
    assert np.allclose([r["box"] for r in rows], offline[["x1", "y1", "x2", "y2"]].to_numpy(), atol=0.01)
    assert list(rows[0]) == run.columns and run.columns[:7] == [
        "frame_idx", "time_sec", "wall_time", "face_id", "box", "det_score", "label"]


def test_a_slow_consumer_drops_frames_instead_of_growing_a_queue(clips_dir: Path, bundle) -> None:
    import affectseq

    run = affectseq.live(clips_dir / "single_face.mp4", bundle, realtime=True, buffer_frames=4)
    waiting = []
    for row in run:
        waiting.append(len(run.capture.buffer))
        time.sleep(0.1)  # a consumer 3x slower than the 30 fps source
    stats = run.stats
    assert max(waiting) <= 4
    assert stats.offered == 72 and stats.dropped > 30
    assert stats.processed + stats.dropped == stats.offered
    assert stats.latency.percentile(95) < 1000  # a bounded wait: at most the buffer's 4 frames behind


def test_max_seconds_and_close_stop_the_capture_thread(clips_dir: Path, bundle) -> None:
    import affectseq

    before = threading.active_count()
    run = affectseq.live(clips_dir / "multi_face_pan.mp4", bundle, realtime=True, max_seconds=0.5)
    rows = list(run)
    assert rows and run.stats.seconds < 1.5
    assert {r["face_id"] for r in rows} >= {0, 1}  # several faces, one row each per frame
    time.sleep(0.2)
    assert threading.active_count() <= before


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "affectseq", "live", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_unopenable_sources_are_one_line_and_nonzero(tmp_path: Path) -> None:
    done = _cli(str(tmp_path / "nothing.mp4"))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "nothing.mp4: no such file" in done.stderr
    not_video = tmp_path / "notes.txt"
    not_video.write_text("hello")
    with pytest.raises(InputError, match="notes.txt: not a readable video"):  # the same one line, from open()
        Capture(parse_source(str(not_video), realtime=True)).open()


def test_cli_refuses_to_overwrite_and_writes_jsonl_and_csv(clips_dir: Path, tmp_path: Path) -> None:
    out, table = tmp_path / "rows.jsonl", tmp_path / "rows.csv"
    out.write_text("mine\n")
    done = _cli(str(clips_dir / "single_face.mp4"), "--out", str(out))
    assert done.returncode == 1 and "exists" in done.stderr and out.read_text() == "mine\n"
    done = _cli(str(clips_dir / "single_face.mp4"), "--out", str(out), "--csv", str(table), "--overwrite",
                "--max-seconds", "60")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame_idx"] for r in rows] == list(range(72))
    assert "72 frames offered, 72 processed" in done.stderr and "latency median" in done.stderr
    import pandas as pd

    csv = pd.read_csv(table)
    assert csv["frame_idx"].tolist() == list(range(72)) and list(csv.columns[4:8]) == ["x1", "y1", "x2", "y2"]
    assert csv["label"].tolist() == [r["label"] for r in rows]


@pytest.mark.slow
def test_cli_realtime_on_a_shared_clip_matches_causal_predict(clips_dir: Path, tmp_path: Path) -> None:
    """``affectseq live --realtime`` on the 24-fps talking-head clip: the columns, every frame offered and
    accounted for, and labels equal to offline ``predict --mode causal`` on the same frames (up to the first
    dropped frame: after one, the tracker has seen other frames than predict's)."""
    import pandas as pd

    clip = clips_dir / "WolfgangLanger_Pexels.mp4"
    out = tmp_path / "live.jsonl"
    done = _cli(str(clip), "--realtime", "--out", str(out), timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    classes = ["neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise", "contempt"]
    assert list(rows[0]) == ["frame_idx", "time_sec", "wall_time", "face_id", "box", "det_score", "label",
                             *[f"prob_{c}" for c in classes]]
    summary = done.stderr.strip().splitlines()[-1]
    offered, processed, dropped = (int(summary.split(word)[0].split()[-1]) for word in
                                   (" frames offered", " processed", " dropped"))
    assert offered == 472 and processed + dropped == offered and processed >= 0.5 * offered, summary
    processed_frames = sorted({r["frame_idx"] for r in rows})
    assert len(processed_frames) == processed and processed_frames[0] == 0 and processed_frames[-1] <= 471
    assert all(r["face_id"] == 0 and r["label"] for r in rows)  # one face in every frame of this clip
    times = [r["time_sec"] for r in rows]
    assert times == sorted(times) and times[-1] == pytest.approx(19.6, abs=0.3)

    predict_out = tmp_path / "predict"
    done = subprocess.run([sys.executable, "-m", "affectseq", "predict", str(clip), "-o", str(predict_out),
                           "--mode", "causal", "--no-progress"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    offline = pd.read_csv(predict_out / clip.stem / "frames.csv").set_index("frame_idx")
    first_gap = next((i for i, f in enumerate(processed_frames) if f != i), len(processed_frames))
    same = [r for r in rows if r["frame_idx"] < first_gap]
    assert len(same) >= 24, f"a frame was dropped within the first second: {processed_frames[:30]}"
    assert [r["label"] for r in same] == offline.loc[[r["frame_idx"] for r in same], "label"].tolist()
    probs = np.array([[r[f"prob_{c}"] for c in classes] for r in same])
    assert np.allclose(probs, offline.loc[[r["frame_idx"] for r in same], [f"prob_{c}" for c in classes]], atol=1e-5)


def test_a_causal_sequence_bundle_runs_live_and_a_bidirectional_one_is_refused(clips_dir: Path, tmp_path: Path) -> None:
    """Sequence bundles: seq2one (a track's first frame has no prediction yet: label null) equals causal predict."""
    import affectseq
    from affectseq.errors import ConfigError
    from affectseq.predict.model import load_model

    from test_predict_sequence import _bundle_file

    clip = clips_dir / "single_face.mp4"
    bundle = load_model(_bundle_file(tmp_path, bidirectional=False, mode="seq2one"), device="cpu")
    rows = list(affectseq.live(clip, bundle, max_seconds=120))
    offline = affectseq.predict_video(clip, bundle, mode="causal")
    assert rows[0]["label"] is None and rows[0]["face_id"] == 0  # nothing before the first frame
    assert [r["label"] for r in rows] == [None if not isinstance(v, str) else v for v in offline["label"]]
    with pytest.raises(ConfigError, match="bidirectional and cannot run live"):
        affectseq.live(clip, load_model(_bundle_file(tmp_path, bidirectional=True), device="cpu"))


@pytest.mark.slow
def test_sigterm_ends_the_run_with_its_summary(clips_dir: Path, tmp_path: Path) -> None:
    import signal

    out = tmp_path / "rows.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "affectseq", "live", str(clips_dir / "WolfgangLanger_Pexels.mp4"),
                             "--realtime", "--out", str(out)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and out.read_text().count("\n") >= 10):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("live: ") and "latency median" in summary
    lines = out.read_text().splitlines()
    assert 10 <= len(lines) < 472 and json.loads(lines[-1])["frame_idx"] < 471  # stopped early, file complete


def _mpegts(src: Path, dst: Path) -> bytes:
    """``src`` re-encoded as an MPEG-TS stream (H.264, 30 fps): a format read front to back, as streams are."""
    from fractions import Fraction

    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mpegts") as out:
        stream_in = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        for i, frame in enumerate(inp.decode(stream_in)):
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return dst.read_bytes()


def test_an_http_stream_that_breaks_off_is_reopened(clips_dir: Path, tmp_path: Path, bundle) -> None:
    """A real HTTP stream: the first connection is cut halfway (Content-Length promises more), the next is whole."""
    import http.server

    import affectseq

    data = _mpegts(clips_dir / "single_face.mp4", tmp_path / "camera.ts")
    connections: list[int] = []

    class CutOnce(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            connections.append(1)
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if len(connections) == 1 else data)
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CutOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/camera.ts"
        events: list[str] = []
        run = affectseq.live(url, bundle, retries=2, buffer_frames=200, on_event=events.append)
        rows = list(run)
    finally:
        server.shutdown()
    assert len(connections) == 2
    assert len(events) == 1 and events[0].startswith(f"{url}: read failed") and "reconnecting (1/2)" in events[0]
    frames = [r["frame_idx"] for r in rows]
    assert frames == list(range(len(frames))) and 72 < len(frames) < 144  # part of the first pass, all of the second
    assert run.stats.dropped == 0 and all(r["label"] for r in rows)
    assert all(b["time_sec"] > a["time_sec"] for a, b in zip(rows, rows[1:]))  # stream time goes on across the gap


def test_affectseq_live_is_the_api_function_not_a_module() -> None:
    import importlib.util

    import affectseq
    from affectseq import api

    assert importlib.util.find_spec("affectseq.live") is None  # the name belongs to the function
    assert affectseq.live is api.live and callable(affectseq.live)


def test_cli_an_existing_csv_is_refused_before_anything_is_written(clips_dir: Path, tmp_path: Path, capsys) -> None:
    """Before, ``--out`` was created (empty) and then the existing ``--csv`` refused: the rerun without that
    mistake then found ``--out`` existing too."""
    from affectseq.cli import main

    out, table = tmp_path / "rows.jsonl", tmp_path / "rows.csv"
    table.write_text("mine\n")
    assert main(["live", str(clips_dir / "single_face.mp4"), "--out", str(out), "--csv", str(table)]) == 1
    assert "rows.csv" in capsys.readouterr().err
    assert not out.exists() and table.read_text() == "mine\n"


def test_close_before_the_first_row_stops_the_capture(clips_dir: Path, bundle) -> None:
    """Before, ``close()`` on a run never iterated closed an unstarted generator, whose ``finally`` never runs:
    the capture thread went on reading the source (a camera stayed on) and the stats never became final."""
    import affectseq

    run = affectseq.live(clips_dir / "multi_face_pan.mp4", bundle, realtime=True)
    thread = run.capture._thread
    assert thread is not None and thread.is_alive()
    run.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert run.stats.ended_at is not None and run.stats.offered == run.stats.processed + run.stats.dropped
    assert list(run) == []
