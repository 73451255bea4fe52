"""The job queue and persistence of ``affectseq serve``, and uploads that stop half-way."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest

from test_serve_support import SAMPLE, FakePredict, client, fake_predict, serve_client, upload, wait_for  # noqa: F401

from affectseq.serve.app import ServeConfig, create_app
from affectseq.serve.jobs import INTERRUPTED, JobCancelled, JobStore, RunRequest


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_uploads_never_run_more_predicts_than_workers(tmp_path: Path, fake_predict: FakePredict,
                                                                 workers: int) -> None:
    fake_predict.delay = 0.3
    with serve_client(tmp_path / "data", jobs=workers) as c:
        ids: list[str] = []
        seen_running: list[int] = []

        def send() -> None:
            response = upload(c, SAMPLE)
            assert response.status_code == 201
            ids.append(response.json()["id"])

        threads = [threading.Thread(target=send) for _ in range(5)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads) or any(
                j["status"] in ("queued", "running") for j in c.get("/api/jobs").json()["jobs"]):
            seen_running.append(sum(j["status"] == "running" for j in c.get("/api/jobs").json()["jobs"]))
            time.sleep(0.05)
        assert len(ids) == 5
        assert all(c.get(f"/api/jobs/{i}").json()["status"] == "done" for i in ids)
    assert fake_predict.calls == 5
    assert fake_predict.max_running == workers
    assert max(seen_running) <= workers


def _blocking_runner(started: threading.Event):
    """A runner that reports progress until its job is cancelled (as the real one does between frames)."""
    def run(request: RunRequest) -> dict:
        request.out_dir.mkdir(parents=True)
        started.set()
        for i in range(2000):
            request.progress(i / 2000, "analysing frames")  # raises JobCancelled once deleted
            time.sleep(0.005)
        raise AssertionError("never cancelled")
    return run


def test_deleting_a_running_job_stops_it_and_removes_its_files(tmp_path: Path) -> None:
    started = threading.Event()
    with serve_client(tmp_path / "data", runner=_blocking_runner(started)) as c:
        job = upload(c, SAMPLE).json()
        queued = upload(c, SAMPLE).json()
        assert started.wait(10)
        assert c.get(f"/api/jobs/{job['id']}").json()["status"] == "running"
        assert c.delete(f"/api/jobs/{queued['id']}").status_code == 204  # queued: gone at once
        assert c.delete(f"/api/jobs/{job['id']}").status_code == 204
        assert c.get(f"/api/jobs/{job['id']}").status_code == 404
        deadline = time.monotonic() + 10
        while list((tmp_path / "data" / "jobs").iterdir()):
            assert time.monotonic() < deadline, list((tmp_path / "data" / "jobs").iterdir())
            time.sleep(0.05)
        assert c.get("/api/jobs").json()["jobs"] == []


def test_jobs_survive_a_restart(tmp_path: Path, fake_predict: FakePredict) -> None:
    data = tmp_path / "data"
    with serve_client(data) as c:
        done = wait_for(c, upload(c, SAMPLE, "done.mp4").json()["id"])
        running = wait_for(c, upload(c, SAMPLE, "was_running.mp4").json()["id"])
        queued = wait_for(c, upload(c, SAMPLE, "was_queued.mp4").json()["id"])
    # What a killed server leaves: one job mid-run, one waiting, and a half-received upload.
    for job, status in ((running, "running"), (queued, "queued")):
        record = data / "jobs" / job["id"] / "job.json"
        state = json.loads(record.read_text())
        state.update(status=status, progress=0.3 if status == "running" else 0.0, summary=None)
        record.write_text(json.dumps(state))
    (data / "uploads" / "abc.partial").write_bytes(b"half")
    (data / "jobs" / ".xyz.tmp").mkdir()
    (data / "jobs" / ("B" * 22) / "out").mkdir(parents=True)  # a deletion cut short: no job.json

    calls_before = fake_predict.calls
    with serve_client(data) as c:
        assert wait_for(c, queued["id"])["status"] == "done"  # queued again and run
        after = c.get(f"/api/jobs/{running['id']}").json()
        assert after["status"] == "failed" and after["error"] == INTERRUPTED
        kept = c.get(f"/api/jobs/{done['id']}").json()
        assert kept["status"] == "done" and kept["summary"]["frames_processed"] == 5
        assert c.get(f"/api/jobs/{done['id']}/frames.csv").status_code == 200
        names = [j["name"] for j in c.get("/api/jobs").json()["jobs"]]
        assert sorted(names) == ["done.mp4", "was_queued.mp4", "was_running.mp4"]
    assert fake_predict.calls == calls_before + 1
    assert list((data / "uploads").iterdir()) == []
    assert not (data / "jobs" / ".xyz.tmp").exists()
    assert not (data / "jobs" / ("B" * 22)).exists()


def test_a_failing_predict_is_a_failed_job_and_the_worker_lives_on(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def flaky(request: RunRequest) -> dict:
        calls.append(request.job_id)
        if len(calls) == 1:
            raise RuntimeError("decoder exploded\nsecond line")
        request.out_dir.mkdir(parents=True)
        return {"ok": True}

    with serve_client(tmp_path / "data", runner=flaky) as c:
        first = wait_for(c, upload(c, SAMPLE).json()["id"])
        second = wait_for(c, upload(c, SAMPLE).json()["id"])
    assert first["status"] == "failed" and first["error"] == "decoder exploded"
    assert second["status"] == "done" and second["summary"] == {"ok": True}


def _multipart(size: int, boundary: str = "b0undary") -> tuple[bytes, bytes, bytes]:
    """(head, filler chunk, tail) of a multipart body whose video part is made of filler chunks."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"x.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()
    return head, b"\0" * size, f"\r\n--{boundary}--\r\n".encode()


async def _call(app, chunks: list[bytes], disconnect_after: int | None = None, headers=()) -> tuple[int, int]:
    """Send ``chunks`` to the ASGI app as one chunked request; (status, chunks the app read)."""
    read = 0
    status = 0

    async def receive() -> dict:
        nonlocal read
        if disconnect_after is not None and read >= disconnect_after:
            return {"type": "http.disconnect"}
        read += 1
        more = read < len(chunks)
        return {"type": "http.request", "body": chunks[read - 1], "more_body": more}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/api/jobs", "raw_path": b"/api/jobs", "query_string": b"",
             "root_path": "", "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
             "headers": [(b"host", b"testserver"),
                         (b"content-type", b"multipart/form-data; boundary=b0undary"), *headers]}
    await app(scope, receive, send)
    return status, read


def _app(tmp_path: Path, **config):
    calls = []
    app = create_app(ServeConfig(data_dir=tmp_path / "data", **config), lambda r: calls.append(r) or {})
    JobStore(tmp_path / "data").open()  # the folders, as the lifespan would make them
    return app


def test_the_limit_is_enforced_while_the_upload_streams(tmp_path: Path) -> None:
    app = _app(tmp_path, max_upload_bytes=2**20)
    head, filler, tail = _multipart(256 * 1024)
    chunks = [head] + [filler] * 40 + [tail]  # 10 MB sent without a Content-Length
    status, read = asyncio.run(_call(app, chunks))
    assert status == 413
    assert read <= 7  # stopped right after the 5th filler chunk crossed 1 MB, not after 10 MB
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_a_declared_length_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    app = _app(tmp_path, max_upload_bytes=2**20)
    head, filler, tail = _multipart(256 * 1024)
    status, read = asyncio.run(_call(app, [head, filler, tail], headers=[(b"content-length", b"99999999")]))
    assert status == 413 and read == 0


def test_a_client_disconnecting_mid_upload_leaves_no_job(tmp_path: Path) -> None:
    app = _app(tmp_path)
    head, filler, tail = _multipart(256 * 1024)
    asyncio.run(_call(app, [head] + [filler] * 8 + [tail], disconnect_after=4))
    data = tmp_path / "data"
    assert list((data / "uploads").iterdir()) == []
    assert list((data / "jobs").iterdir()) == []


def test_job_cancelled_is_not_reported_as_an_error_type(tmp_path: Path) -> None:
    # A deleted job's runner stops with JobCancelled; the record says "interrupted", not a traceback.
    assert issubclass(JobCancelled, Exception) and "interrupted" in INTERRUPTED
