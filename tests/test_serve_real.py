"""The real predict behind the API: a job's files are ``affectseq predict``'s for the same video and options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_serve_support import serve_client, upload, wait_for

from affectseq.cli import main


def test_job_frames_csv_equals_predicts(tmp_path: Path, clips_dir: Path) -> None:
    clip = clips_dir / "single_face.mp4"
    with serve_client(tmp_path / "data") as c:
        created = upload(c, clip, "single_face.mp4", overlay="false", detect_every="4", main_face_only="true")
        assert created.status_code == 201
        job = wait_for(c, created.json()["id"], timeout=300)
        assert job["status"] == "done", job["error"]
        assert job["summary"]["frames_processed"] == 72 and job["summary"]["video"]["path"] == "single_face.mp4"
        assert "fingerprint" not in job["summary"]  # no server paths in the API
        served = c.get(f"/api/jobs/{job['id']}/frames.csv").content
        series = c.get(f"/api/jobs/{job['id']}/series.json").json()
        assert len(series["time_sec"]) == 72 and len(series["faces"]) == 1
        assert c.get(f"/api/jobs/{job['id']}/overlay.mp4").status_code == 404  # overlay=false

    out = tmp_path / "predict"
    assert main(["predict", str(clip), "-o", str(out), "--detect-every", "4", "--main-face-only",
                 "--no-progress"]) == 0
    assert served == (out / "single_face" / "frames.csv").read_bytes()
    # The job's own summary.json records predict's options: no serve wrapper posing as a custom face source.
    [job_summary] = (tmp_path / "data").rglob("summary.json")
    job_print = json.loads(job_summary.read_text())["fingerprint"]
    cli_print = json.loads((out / "single_face" / "summary.json").read_text())["fingerprint"]
    assert job_print["options"] == cli_print["options"] and job_print["options"]["face_source"] == "default"


def test_a_deleted_job_stops_between_frames(tmp_path: Path, clips_dir: Path) -> None:
    """Cancellation rides on the face source: the real pipeline stops and publishes nothing."""
    import threading

    from affectseq.serve.jobs import JobCancelled, RunRequest
    from affectseq.serve.runner import PredictRunner

    cancelled = threading.Event()
    seen: list[tuple[float, str]] = []

    def progress(fraction: float, stage: str) -> None:
        seen.append((fraction, stage))
        if stage == "analysing frames" and fraction > 0.1:
            cancelled.set()

    out = tmp_path / "job" / "out"
    out.parent.mkdir()
    request = RunRequest("x" * 22, clips_dir / "single_face.mp4", out, "clip.mp4", {"overlay": False},
                         progress, cancelled)
    with pytest.raises(JobCancelled):
        PredictRunner().__call__(request)
    assert not out.exists()
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)  # progress only goes forward
    assert list((tmp_path / "job").iterdir()) == []  # no partial folder left behind
