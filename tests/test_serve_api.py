"""The ``affectseq serve`` HTTP API: every status and error path, with a fake predict (fast)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from test_serve_support import SAMPLE, FakePredict, client, fake_predict, serve_client, upload, wait_for  # noqa: F401

from affectseq.cli import main


def test_upload_runs_a_job_and_serves_its_files(client) -> None:
    created = upload(client, SAMPLE, "interview.mp4", detect_every="4")
    assert created.status_code == 201
    job = created.json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", job["id"])
    assert created.headers["location"] == f"/api/jobs/{job['id']}"
    assert job["status"] == "queued" and job["name"] == "interview.mp4"
    assert job["video"]["duration_sec"] == pytest.approx(19.7, abs=0.1)  # probed at upload

    done = wait_for(client, job["id"])
    assert done["status"] == "done" and done["progress"] == 1.0 and done["error"] is None
    assert done["options"] == {"detect_every": 4, "main_face_only": False, "smoothing_sec": None, "tta_flip": False,
                               "overlay": True}
    assert done["summary"]["detect_every"] == 4
    assert done["summary"]["video"]["path"] == "interview.mp4"  # the client's name, not our folder
    assert "fingerprint" not in done["summary"]

    base = f"/api/jobs/{job['id']}"
    csv = client.get(f"{base}/frames.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.startswith("frame_idx,time_sec,face_id")
    assert 'filename="interview_frames.csv"' in csv.headers["content-disposition"]
    assert client.get(f"{base}/summary.json").json()["frames_processed"] == 5
    assert client.get(f"{base}/timeline.png").content.startswith(b"\x89PNG")
    video = client.get(f"{base}/video")
    assert video.content == SAMPLE.read_bytes() and video.headers["content-type"] == "video/mp4"
    assert client.get(f"{base}/overlay.mp4").status_code == 200

    series = client.get(f"{base}/series.json").json()
    assert len(series["classes"]) == 7 and len(series["time_sec"]) == 5
    face = series["faces"][0]
    assert face["probs"]["neutral"][:2] == [0.4, 0.1] and face["probs"]["neutral"][4] is None  # gap: no face
    assert sum(face["share"].values()) == pytest.approx(1.0)

    pytest.importorskip("pyarrow")
    import pandas as pd

    parquet = client.get(f"{base}/frames.parquet")
    assert parquet.status_code == 200
    assert len(pd.read_parquet(io.BytesIO(parquet.content))) == 5

    listed = client.get("/api/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]] and listed[0]["summary"] is None


def test_non_video_upload_is_a_failed_job_with_the_clis_message(client, tmp_path: Path, capsys,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    junk = bytes(range(256)) * (2 * 2**20 // 256)  # 2 MB that no demuxer takes for a video
    response = upload(client, name="notes.txt", data=junk)
    assert response.status_code == 201
    job = response.json()
    assert job["status"] == "failed" and job["error"].startswith("notes.txt: ")
    assert wait_for(client, job["id"])["status"] == "failed"
    assert client.get(f"/api/jobs/{job['id']}/frames.csv").status_code == 409

    monkeypatch.undo()  # the real predict and model for the CLI's side
    path = tmp_path / "notes.txt"
    path.write_bytes(junk)
    assert main(["predict", str(path), "-o", str(tmp_path / "out"), "--no-progress"]) == 1
    cli_line = [line for line in capsys.readouterr().err.splitlines() if str(path) in line][0]
    assert cli_line == f"affectseq: error: {path}: {job['error'].split(': ', 1)[1]}"


def test_over_limit_upload_is_413_and_keeps_nothing(tmp_path: Path, fake_predict) -> None:
    with serve_client(tmp_path / "data", max_upload_bytes=2**20) as c:
        response = upload(c, name="big.mp4", data=b"\0" * (2 * 2**20))
        assert response.status_code == 413
        assert "larger than the limit of 1 MB" in response.json()["detail"]
        assert c.get("/api/jobs").json()["jobs"] == []
        assert list((tmp_path / "data" / "uploads").iterdir()) == []
        # Just under the limit is fine (the multipart framing does not count against it).
        ok = upload(c, name="small.mp4", data=SAMPLE.read_bytes()[: 2**20])
        assert ok.status_code == 201


@pytest.mark.parametrize("name", ["../../../etc/passwd.mp4", "..\\..\\win.ini", "/abs/path/clip.mp4", "..", "",
                                  "émotion 🎥 <b>x</b>.mp4", "a" * 600 + ".mp4"])
def test_file_names_are_display_text_only(client, tmp_path: Path, name: str) -> None:
    response = upload(client, SAMPLE, name)
    assert response.status_code == 201, response.text
    job = wait_for(client, response.json()["id"])
    assert job["status"] == "done"
    assert "/" not in job["name"] and "\\" not in job["name"] and len(job["name"]) <= 255
    data = tmp_path / "data"
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
    assert files == sorted(f"jobs/{job['id']}/{f}" for f in (
        "job.json", "upload", "out/frames.csv", "out/summary.json", "out/timeline.png", "out/overlay.mp4"))
    assert not (tmp_path / "etc").exists()


def test_unicode_name_round_trips_as_display_text(client) -> None:
    job = upload(client, SAMPLE, "émotion 🎥.mp4").json()
    assert job["name"] == "émotion 🎥.mp4"
    wait_for(client, job["id"])
    disposition = client.get(f"/api/jobs/{job['id']}/frames.csv").headers["content-disposition"]
    assert "filename*=utf-8''" in disposition.lower()


@pytest.mark.parametrize("fields, message", [
    ({"detect_every": "0"}, "between 1 and 1000"),
    ({"detect_every": "x"}, "must be an integer"),
    ({"smoothing_sec": "nan"}, "between 0 and 60"),
    ({"smoothing_sec": "soon"}, "must be a number"),
    ({"main_face_only": "maybe"}, "true or false"),
    ({"detect-every": "4"}, "unknown form field"),
])
def test_bad_options_are_422_and_keep_nothing(client, tmp_path: Path, fields: dict, message: str) -> None:
    response = upload(client, SAMPLE, **fields)
    assert response.status_code == 422 and message in response.json()["detail"]
    assert client.get("/api/jobs").json()["jobs"] == []
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_malformed_requests_are_400(client) -> None:
    assert client.post("/api/jobs", content=b"hello", headers={"content-type": "text/plain"}).status_code == 400
    no_file = client.post("/api/jobs", files={"other": ("x.mp4", b"123")})
    assert no_file.status_code == 400 and "no 'video' file" in no_file.json()["detail"]
    empty = client.post("/api/jobs", files={"video": ("x.mp4", b"")})
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
    two = client.post("/api/jobs", files=[("video", ("a.mp4", b"1")), ("video", ("b.mp4", b"2"))])
    assert two.status_code == 400
    truncated = client.post("/api/jobs", content=b"--xyz\r\nContent-Disposition: form-data; name=\"video\"",
                            headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert truncated.status_code == 400
    assert client.get("/api/jobs").json()["jobs"] == []


@pytest.mark.parametrize("job_id", ["nope", "AAAAAAAAAAAAAAAAAAAAAA", "..%2F..%2Fetc", "%2e%2e"])
def test_unknown_jobs_are_404(client, job_id: str) -> None:
    for suffix in ("", "/frames.csv", "/summary.json", "/timeline.png", "/overlay.mp4", "/video",
                   "/series.json", "/frames.parquet"):
        assert client.get(f"/api/jobs/{job_id}{suffix}").status_code == 404, suffix
    assert client.delete(f"/api/jobs/{job_id}").status_code == 404


def test_results_before_done_are_409_and_missing_overlay_404(tmp_path: Path, fake_predict: FakePredict) -> None:
    fake_predict.delay = 0.5
    with serve_client(tmp_path / "data") as c:
        job = upload(c, SAMPLE, overlay="false").json()
        assert c.get(f"/api/jobs/{job['id']}/frames.csv").status_code == 409
        assert c.get(f"/api/jobs/{job['id']}/video").status_code == 200  # the upload is there at once
        wait_for(c, job["id"])
        missing = c.get(f"/api/jobs/{job['id']}/overlay.mp4")
        assert missing.status_code == 404 and "overlay=true" in missing.json()["detail"]


def test_range_requests_get_206(client) -> None:
    job = wait_for(client, upload(client, SAMPLE).json()["id"])
    size = SAMPLE.stat().st_size
    for name in ("video", "overlay.mp4"):
        part = client.get(f"/api/jobs/{job['id']}/{name}", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{size}"
        assert part.content == SAMPLE.read_bytes()[100:200]
        assert part.headers["accept-ranges"] == "bytes"
    tail = client.get(f"/api/jobs/{job['id']}/video", headers={"Range": f"bytes={size - 10}-"})
    assert tail.status_code == 206 and len(tail.content) == 10
    bad = client.get(f"/api/jobs/{job['id']}/video", headers={"Range": f"bytes={size + 10}-"})
    assert bad.status_code == 416


def test_delete_removes_the_job_and_its_files(client, tmp_path: Path) -> None:
    job = wait_for(client, upload(client, SAMPLE).json()["id"])
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 404
    assert list((tmp_path / "data" / "jobs").iterdir()) == []


def test_sample_endpoint(client) -> None:
    created = client.post("/api/jobs/sample", data={"main_face_only": "true"})
    assert created.status_code == 201
    job = wait_for(client, created.json()["id"])
    assert job["status"] == "done" and job["name"] == "sample.mp4" and job["options"]["main_face_only"] is True
    assert client.post("/api/jobs/sample", data={"detect_every": "-1"}).status_code == 422


def test_cross_site_posts_and_unknown_hosts_are_refused(tmp_path: Path, fake_predict) -> None:
    with serve_client(tmp_path / "data", allowed_hosts=("testserver",)) as c:
        evil = c.post("/api/jobs/sample", headers={"Origin": "http://evil.example"})
        assert evil.status_code == 403
        same = c.post("/api/jobs/sample", headers={"Origin": "http://testserver"})
        assert same.status_code == 201
        assert c.get("/api/jobs", headers={"Host": "rebound.example"}).status_code == 400


def test_page_docs_and_openapi(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "affectseq" in page.text
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset
    assert "http://" not in page.text and "https://" not in page.text  # nothing from the internet
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/frames.csv"} <= set(spec["paths"])
    body = spec["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(body["properties"]) == {"video", "detect_every", "main_face_only", "smoothing_sec", "tta_flip", "overlay"}
    assert client.get("/api/config").json()["max_upload_bytes"] == 2048 * 2**20
    static = Path(__file__).resolve().parents[1] / "src" / "affectseq" / "serve" / "static"
    for file in static.iterdir():
        assert not re.search(r"https?://(?!localhost|HOST)", file.read_text()), file  # no CDN anywhere


def test_summary_json_of_api_is_plain_json(client) -> None:
    job = wait_for(client, upload(client, SAMPLE).json()["id"])
    assert json.loads(client.get(f"/api/jobs/{job['id']}").text)["summary"]["frames_with_face"] == 4


@pytest.mark.parametrize("header, name", [("localhost:8765", "localhost"), ("[::1]:8765", "::1"), ("[::1]", "::1"),
                                          ("127.0.0.1", "127.0.0.1"), ("evil.example:80", "evil.example")])
def test_host_header_names(header: str, name: str) -> None:
    from affectseq.serve.app import _host_name

    assert _host_name(header) == name
