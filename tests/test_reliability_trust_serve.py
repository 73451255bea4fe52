"""Issue #22, "also seen": a 1x1 video with --overlay, and serve uploads that must fail clearly
(a full disk, a file in the wrong form field, a body shorter than its Content-Length). Each failed on b43f994."""

from __future__ import annotations

import errno
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from affectseq.cli import main

from test_predict_helpers import save_tiny_frame_model


def _one_pixel_video(path: Path, n: int = 4) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 1, 1, "bgr0"
        for _ in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((1, 1, 3), 90, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_a_one_pixel_video_with_overlay_keeps_its_results(tmp_path: Path, capsys) -> None:
    """``overlay.py`` cropped the frame to 0x0 (yuv420p needs even sizes): IndexError, results lost."""
    video = _one_pixel_video(tmp_path / "dot.mkv")
    model = save_tiny_frame_model(tmp_path / "tiny.safetensors")
    code = main(["predict", str(video), "-o", str(tmp_path / "out"), "--overlay", "--model", str(model),
                 "--detector", "haar", "--backend", "torch", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    folder = tmp_path / "out" / "dot"
    assert json.loads((folder / "summary.json").read_text())["frames_processed"] == 4
    from affectseq.io.video import probe_video

    info = probe_video(folder / "overlay.mp4", count_frames=True)
    assert (info.width, info.height, info.frame_count) == (2, 2, 4)


pytest.importorskip("fastapi", reason="the serve tests need the serve extra")
from test_serve_support import SAMPLE, client, fake_predict, serve_client, upload  # noqa: E402,F401


def test_a_video_sent_as_form_field_file_says_which_field_to_use(client) -> None:
    """It answered "form field 'file' is too long"."""
    response = client.post("/api/jobs", files={"file": ("clip.mp4", SAMPLE.read_bytes())})
    assert response.status_code == 400
    assert response.json()["detail"] == ("no 'video' file in the form: send the video in the form field 'video' "
                                         "(this form sent a file in 'file')")
    assert client.get("/api/jobs").json()["jobs"] == []


def _multipart(boundary: str, data: bytes, closing: bool = True) -> bytes:
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"clip.mp4\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return body + (f"--{boundary}--\r\n".encode() if closing else b"")


def test_a_body_shorter_than_its_content_length_is_not_a_job(client, tmp_path: Path) -> None:
    """A client that stops early (its Content-Length larger than what came) got a job on a truncated file."""
    body = _multipart("xyz", SAMPLE.read_bytes()[:200_000])
    short = client.post("/api/jobs", content=body[:150_000],
                        headers={"content-type": "multipart/form-data; boundary=xyz",
                                 "content-length": str(len(body))})
    assert short.status_code == 400 and "150000 of the" in short.json()["detail"]
    unclosed = client.post("/api/jobs", content=_multipart("xyz", SAMPLE.read_bytes()[:200_000], closing=False),
                           headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert unclosed.status_code == 400 and "closing boundary" in unclosed.json()["detail"]
    assert client.get("/api/jobs").json()["jobs"] == []
    assert list((tmp_path / "data" / "uploads").iterdir()) == []
    ok = client.post("/api/jobs", content=body, headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert ok.status_code == 201, ok.text


class _FullDisk:
    """A file object whose writes fail as on a full disk."""

    def __init__(self, path, mode):
        self.real = open(path, mode)

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_full_disk_during_an_upload_is_507_with_one_line(client, tmp_path: Path, monkeypatch, caplog) -> None:
    """It was a bare 500 with a traceback in the log."""
    import affectseq.serve.upload as upload_module

    monkeypatch.setattr(upload_module, "open", _FullDisk, raising=False)
    response = upload(client, SAMPLE)
    assert response.status_code == 507 and "no disk space" in response.json()["detail"]
    assert list((tmp_path / "data" / "uploads").iterdir()) == []
    assert client.get("/api/jobs").json()["jobs"] == []
    assert "Traceback" not in caplog.text


def test_a_full_disk_while_publishing_the_job_is_507(client, tmp_path: Path, monkeypatch) -> None:
    from affectseq.serve.jobs import JobStore

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(JobStore, "create", full)
    response = upload(client, SAMPLE)
    assert response.status_code == 507 and "no disk space" in response.json()["detail"]
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_a_link_planted_as_the_uploads_folder_is_refused(tmp_path: Path, fake_predict) -> None:
    """``DATA/uploads -> elsewhere`` sent every upload outside the server's data folder."""
    from affectseq.errors import InputError

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("x")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "uploads").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InputError, match="symbolic link"):
        with serve_client(tmp_path / "data"):
            pass
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]
