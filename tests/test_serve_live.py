"""The ``/live`` page's WebSocket: rows for JPEG frames, drop not queue, freed sessions, a session limit, origins."""

from __future__ import annotations

import contextlib
import io
import struct
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install -e '.[serve]'")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

from starlette.websockets import WebSocketDisconnect  # noqa: E402

from test_serve_support import serve_client  # noqa: E402


def _jpeg(path: Path, width: int = 640) -> bytes:
    from PIL import Image

    image = Image.open(path).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _frame_message(jpeg: bytes, client_ms: float) -> bytes:
    return struct.pack("<d", client_ms) + jpeg


@pytest.fixture
def client(tmp_path: Path):
    with serve_client(tmp_path / "data", max_live_sessions=2) as c:
        yield c


def _sessions(client) -> list[dict]:
    return client.get("/api/live/sessions").json()["sessions"]


def _wait_sessions(client, n: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while (sessions := _sessions(client)) and len(sessions) != n and time.monotonic() < deadline:
        time.sleep(0.05)
    return sessions


def test_page_has_the_documented_element_ids(client) -> None:
    page = client.get("/live")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in ("live-start", "live-label", "live-fps", "live-latency", "live-record"):
        assert f'id="{element}"' in page.text
    assert client.get("/static/live.js").status_code == 200


def test_a_frame_gets_its_rows_back(client, clips_dir: Path) -> None:
    jpeg = _jpeg(clips_dir / "single_face.jpg")
    with client.websocket_connect("/api/live") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready" and len(ready["classes"]) == 8
        for i in range(3):
            ws.send_bytes(_frame_message(jpeg, 1000.0 + i))
            reply = ws.receive_json()
            assert reply["type"] == "rows" and reply["client_ms"] == 1000.0 + i and reply["frame_idx"] == i
        rows = reply["rows"]
        assert len(rows) == 1 and rows[0]["main"] is True and rows[0]["face_id"] == 0
        assert rows[0]["label"] in ready["classes"]
        assert sum(rows[0][f"prob_{c.lower()}"] for c in ready["classes"]) == pytest.approx(1.0, abs=1e-4)
        x1, y1, x2, y2 = rows[0]["box"]
        assert 0 <= x1 < x2 <= reply["width"] and 0 <= y1 < y2 <= reply["height"]
        ws.send_bytes(_frame_message(b"not a jpeg at all", 5.0))
        assert "not a JPEG" in ws.receive_json()["message"]
        ws.send_bytes(_frame_message(jpeg, 6.0))  # the session goes on after a bad frame
        assert ws.receive_json()["rows"][0]["face_id"] == 0


def test_a_stalled_consumer_drops_frames_and_a_closed_socket_frees_its_session(client, clips_dir: Path) -> None:
    jpeg = _jpeg(clips_dir / "single_face.jpg")
    with client.websocket_connect("/api/live") as ws:
        assert ws.receive_json()["type"] == "ready"
        n = 60
        for i in range(n):  # a burst, never reading the replies
            ws.send_bytes(_frame_message(jpeg, float(i)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            (session,) = _sessions(client)
            if session["frames_received"] == n and session["frames_processed"] + session["frames_dropped"] == n:
                break  # every frame answered or dropped
            time.sleep(0.05)
        assert session["frames_received"] == n
        # At most one frame waits besides the one being processed: the rest were dropped, not queued.
        assert session["frames_dropped"] >= n // 2, session
        assert session["frames_processed"] + session["frames_dropped"] == n, session
        hub = client.app_state.live
        slot = next(iter(hub.sessions.values()))
        assert slot.waiting is None  # nothing is kept once processed
    assert _wait_sessions(client, 0) == []  # closing the socket ended the session
    assert not hub.sessions


def test_past_the_session_limit_a_clear_message(client) -> None:
    with contextlib.ExitStack() as stack:
        for _ in range(2):
            ws = stack.enter_context(client.websocket_connect("/api/live"))
            assert ws.receive_json()["type"] == "ready"
        with client.websocket_connect("/api/live") as third:
            busy = third.receive_json()
            assert busy["type"] == "busy" and "2 live sessions are open already" in busy["message"]
            with pytest.raises(WebSocketDisconnect) as closed:
                third.receive_json()
            assert closed.value.code == 1013
        assert len(_sessions(client)) == 2
    assert _wait_sessions(client, 0) == []
    with client.websocket_connect("/api/live") as ws:  # a freed slot is usable again
        assert ws.receive_json()["type"] == "ready"


def test_another_sites_page_and_unknown_hosts_are_refused(tmp_path: Path) -> None:
    with serve_client(tmp_path / "data", allowed_hosts=("127.0.0.1", "localhost", "testserver")) as client:
        with pytest.raises(WebSocketDisconnect) as refused:
            with client.websocket_connect("/api/live", headers={"origin": "http://evil.example"}):
                pass
        assert refused.value.code == 1008
        with pytest.raises(WebSocketDisconnect):
            with client.websocket_connect("/api/live", headers={"host": "rebound.example"}):
                pass
        with client.websocket_connect("/api/live", headers={"origin": "http://testserver"}) as ws:
            assert ws.receive_json()["type"] == "ready"
        assert _wait_sessions(client, 0) == []


def test_oversized_frames_are_refused_before_decoding() -> None:
    from affectseq.serve.live import FrameRejected, decode_frame

    from PIL import Image

    big = io.BytesIO()
    Image.fromarray(np.zeros((8, 4000, 3), np.uint8)).save(big, "JPEG")
    with pytest.raises(FrameRejected, match="larger than 1920 pixels"):
        decode_frame(_frame_message(big.getvalue(), 0.0))
    with pytest.raises(FrameRejected, match="at most"):
        decode_frame(b"\0" * (3 * 2**20))


@pytest.mark.timeout(120)
def test_a_frame_the_model_fails_on_is_answered_with_an_error_and_the_session_goes_on(client, clips_dir: Path) -> None:
    """Before, an exception from the model (e.g. a NaN output) ended the session's worker silently: the tab
    got no answer to that frame nor any later one, and the server still counted the session as live."""
    jpeg = _jpeg(clips_dir / "single_face.jpg")
    hub = client.app_state.live
    make_session = hub.make_session
    calls = []

    def flaky_session():
        session = make_session()
        process = session.process

        def first_fails(*args, **kwargs):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("NaN in expr_prob for 1 of 1 rows")
            return process(*args, **kwargs)

        session.process = first_fails
        return session

    hub.make_session = flaky_session
    with client.websocket_connect("/api/live") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(_frame_message(jpeg, 1.0))
        error = ws.receive_json()
        assert error["type"] == "error" and "NaN in expr_prob" in error["message"]
        assert "\n" not in error["message"]
        ws.send_bytes(_frame_message(jpeg, 2.0))
        reply = ws.receive_json()
        assert reply["type"] == "rows" and reply["rows"][0]["face_id"] == 0
