"""The ``/live`` page of ``affectseq serve``: the browser's camera in, rows back over a WebSocket.

Protocol of ``/api/live`` (one WebSocket per tab): the server first sends
``{"type": "ready", "classes": [...], "has_va": ..., "max_fps": ...}`` -- or
``{"type": "busy", "message": ...}`` and closes when ``max_sessions`` tabs are live
already. The page then sends binary messages, each one frame: an 8-byte little-endian
float64 (the page's capture time in ms, echoed back for its latency) followed by a
JPEG. For each processed frame the server answers
``{"type": "rows", "client_ms": ..., "frame_idx": ..., "rows": [...], "stats": {...}}``
(rows as ``affectseq live`` prints them, plus ``main``: the main face); a frame refused or failed
is answered with ``{"type": "error", "message": ...}`` (one line) and the session goes on.

Bounded memory, drop not queue: a session holds at most one waiting frame besides
the one being processed -- a newer frame replaces a waiting one (counted as dropped) --
and frames are decoded only when their turn comes. Nothing is written to disk.
Sessions share the loaded model and a small pool of worker threads; a closed tab ends
its session at once. Host and Origin are checked like every other request of the app
(a WebSocket is not covered by the HTTP middleware).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import math
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter, FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

from affectseq.errors import first_line
from affectseq.predict.live_capture import CapturedFrame

log = logging.getLogger(__name__)
MAX_SESSIONS = 4
MAX_FRAME_BYTES = 2 * 2**20          # one JPEG frame
MAX_FRAME_SIDE = 1920                # pixels, checked from the JPEG header before decoding
MAX_FPS = 15                         # the page's rate cap
WORKER_THREADS = 2                   # frames processed at once over all sessions (the machine's cores)
_HEADER = struct.Struct("<d")


class FrameRejected(ValueError):
    """A frame message the server will not decode (too big, not a JPEG)."""


def decode_frame(data: bytes) -> tuple[float, "Any"]:
    """``(client_ms, rgb)`` from one binary frame message; FrameRejected for a bad one."""
    import numpy as np
    from PIL import Image

    if len(data) <= _HEADER.size or len(data) > MAX_FRAME_BYTES + _HEADER.size:
        raise FrameRejected(f"a frame message must be 8 bytes + a JPEG of at most {MAX_FRAME_BYTES} bytes")
    (client_ms,) = _HEADER.unpack_from(data)
    try:
        image = Image.open(io.BytesIO(data[_HEADER.size:]), formats=["JPEG"])
        if max(image.size) > MAX_FRAME_SIDE:
            raise FrameRejected(f"frames larger than {MAX_FRAME_SIDE} pixels are refused, got {image.size}")
        rgb = np.array(image.convert("RGB"))  # writable: the detector makes tensors of it
    except FrameRejected:
        raise
    except Exception as err:  # PIL raises many types on hostile input
        raise FrameRejected(f"not a JPEG frame ({type(err).__name__})") from None
    return (client_ms if math.isfinite(client_ms) else 0.0), rgb


@dataclass
class LiveSessionSlot:
    """One tab's session: its predictor, the frame waiting for the model, counters (no frame is kept after use)."""

    id: int
    session: Any
    started_at: float = field(default_factory=time.monotonic)
    waiting: bytes | None = None
    received: int = 0
    dropped: int = 0
    rejected: int = 0


class LiveHub:
    """The live sessions of one server: at most ``max_sessions``, one shared model, shared worker threads."""

    def __init__(self, make_session: Callable[[], Any], max_sessions: int = MAX_SESSIONS,
                 worker_threads: int = WORKER_THREADS):
        self.make_session = make_session
        self.max_sessions = int(max_sessions)
        self.sessions: dict[int, LiveSessionSlot] = {}
        self.limiter = anyio.CapacityLimiter(worker_threads)
        self._lock = threading.Lock()
        self._next = 0

    def open(self) -> LiveSessionSlot | None:
        """A new session, or None when the limit is reached."""
        with self._lock:
            if len(self.sessions) >= self.max_sessions:
                return None
            self._next += 1
            slot = LiveSessionSlot(self._next, None)
            self.sessions[slot.id] = slot
        try:
            slot.session = self.make_session()
        except BaseException:
            self.close(slot)
            raise
        return slot

    def close(self, slot: LiveSessionSlot) -> None:
        with self._lock:
            self.sessions.pop(slot.id, None)
        slot.waiting = None
        slot.session = None  # the predictor's tracks and the tracker go with it

    def describe(self) -> dict[str, Any]:
        """What ``GET /api/live/sessions`` shows: counts only (no frames, no rows)."""
        with self._lock:
            slots = list(self.sessions.values())
        return {"max_sessions": self.max_sessions, "sessions": [
            {"id": s.id, "seconds": round(time.monotonic() - s.started_at, 1), "frames_received": s.received,
             "frames_dropped": s.dropped, "frames_rejected": s.rejected, "frame_waiting": s.waiting is not None,
             "frames_processed": s.session.stats.processed if s.session is not None else 0} for s in slots]}


def websocket_allowed(websocket: WebSocket, allowed_hosts: tuple[str, ...] | None,
                      host_name: Callable[[str], str]) -> str | None:
    """Why this WebSocket handshake is refused (unknown Host, another site's Origin), or None.

    The rule of the app's HTTP middleware: browsers always send Origin with a WebSocket, and
    another site's page must not reach a local camera session (cross-site WebSocket hijacking).
    """
    host = websocket.headers.get("host", "")
    if allowed_hosts is not None and host_name(host) not in allowed_hosts:
        return f"unknown host {host!r}"
    origin = websocket.headers.get("origin")
    if origin and urlsplit(origin).netloc != host:
        return "cross-site request refused"
    return None


def mount_live(app: FastAPI, config: Any, runner: Any, static_dir: Path, host_name: Callable[[str], str]) -> LiveHub:
    """Add ``GET /live``, ``GET /api/live/sessions`` and the ``/api/live`` WebSocket to ``app``.

    ``host_name`` is the app's own Host-header parser (passed in: this module must not import the app).
    """
    hub = LiveHub(_session_factory(config, runner), getattr(config, "max_live_sessions", MAX_SESSIONS))
    router = APIRouter()

    @router.get("/live", include_in_schema=False)
    def live_page() -> FileResponse:
        return FileResponse(static_dir / "live.html", media_type="text/html")

    @router.get("/api/live/sessions", summary="Live camera sessions now open (counts only)")
    def live_sessions() -> dict[str, Any]:
        return hub.describe()

    @router.websocket("/api/live")
    async def live_socket(websocket: WebSocket) -> None:
        refused = websocket_allowed(websocket, getattr(config, "allowed_hosts", None), host_name)
        if refused is not None:
            await websocket.close(code=1008, reason=refused)  # before accept: the handshake gets 403
            return
        await websocket.accept()
        await _serve_session(websocket, hub)

    app.include_router(router)
    app.state.live = hub
    return hub


def _session_factory(config: Any, runner: Any) -> Callable[[], Any]:
    """A new :class:`~affectseq.predict.live_session.LiveSession` per tab, on the server's model (loaded once)."""
    cache: dict[str, Any] = {}
    lock = threading.Lock()

    def bundle() -> Any:
        with lock:
            if "bundle" not in cache:
                load = getattr(runner, "bundle", None)
                if load is not None:
                    cache["bundle"] = load(None)
                else:  # a stand-in runner (tests): the configured model
                    from affectseq.predict.model import load_model

                    cache["bundle"] = load_model(getattr(config, "model", "default"))
            return cache["bundle"]

    def make() -> Any:
        from affectseq.predict.live_session import LiveSession

        return LiveSession(bundle(), main_flag=True)

    return make


async def _serve_session(websocket: WebSocket, hub: LiveHub) -> None:
    try:
        slot = await anyio.to_thread.run_sync(hub.open)
    except Exception as err:  # the model failed to load: say so, do not crash the server
        log.exception("live session could not start")
        await websocket.send_json({"type": "error", "message": f"the model could not be loaded ({err})"})
        await websocket.close(code=1011)
        return
    if slot is None:
        await websocket.send_json({"type": "busy", "message": f"{hub.max_sessions} live sessions are open already "
                                   "(the server's limit): close another live tab, then press Start again"})
        await websocket.close(code=1013)
        return
    session = slot.session
    await websocket.send_json({"type": "ready", "session": slot.id, "classes": list(session.classes),
                               "has_va": session.has_va, "max_fps": MAX_FPS})
    arrived = asyncio.Event()
    worker = asyncio.create_task(_work(websocket, hub, slot, arrived))
    try:
        await _receive(websocket, slot, arrived)
    finally:
        worker.cancel()
        with contextlib.suppress(BaseException):
            await worker
        hub.close(slot)


async def _receive(websocket: WebSocket, slot: LiveSessionSlot, arrived: asyncio.Event) -> None:
    """Keep only the newest frame: one arriving while another waits replaces it (drop, never queue)."""
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is None:
            continue  # text messages are not part of the protocol; ignored
        slot.received += 1
        if slot.waiting is not None:
            slot.dropped += 1
        slot.waiting = data[:MAX_FRAME_BYTES + _HEADER.size + 1]  # an oversize one is refused whole by decode
        arrived.set()


async def _work(websocket: WebSocket, hub: LiveHub, slot: LiveSessionSlot, arrived: asyncio.Event) -> None:
    """Process the waiting frame, answer with its rows, repeat; the session's one frame in flight."""
    frame_idx = 0
    t0 = time.monotonic()
    while True:
        await arrived.wait()
        arrived.clear()
        data, slot.waiting = slot.waiting, None
        if data is None:
            continue
        try:
            reply = await anyio.to_thread.run_sync(_process, slot.session, data, frame_idx, t0, limiter=hub.limiter)
        except FrameRejected as err:
            slot.rejected += 1
            reply = {"type": "error", "message": str(err)}
        except Exception as err:  # noqa: BLE001 -- else this task ends silently and the tab waits forever
            log.warning("live session %d: frame %d failed", slot.id, frame_idx, exc_info=True)
            reply = {"type": "error",
                     "message": f"frame {frame_idx} could not be processed: {first_line(err) or type(err).__name__}"}
            frame_idx += 1  # the predictor may have seen it: the next frame comes after it
        else:
            frame_idx += 1
        try:  # a tab that stops reading blocks this send; meanwhile _receive keeps only the newest frame
            await websocket.send_text(json.dumps(reply))
        except (WebSocketDisconnect, RuntimeError):
            return


def _process(session: Any, data: bytes, frame_idx: int, t0: float) -> dict[str, Any]:
    client_ms, rgb = decode_frame(data)
    now = time.monotonic()
    rows = session.process(CapturedFrame(frame_idx, now - t0, rgb, now, time.time()))
    stats = session.stats
    return {"type": "rows", "client_ms": client_ms, "frame_idx": frame_idx, "width": int(rgb.shape[1]),
            "height": int(rgb.shape[0]), "rows": rows,
            "stats": {"processed": stats.processed, "latency_ms_median": stats.latency.percentile(50)}}
