"""Where live frames come from: a camera, a stream URL or a file, and the bounded buffer between capture and work.

A live source is read by its own thread (:class:`Capture`) that puts every decoded frame
into a :class:`FrameBuffer`: a few frames at most, the oldest dropped (and counted) when the
consumer falls behind, so memory never grows and latency stays bounded. A file read
without ``realtime`` is not live: the consumer pulls its frames one by one and none is
dropped (the same frames as ``predict``).

Sources (:func:`parse_source`): a camera index (``0``: ``/dev/video0`` on Linux,
AVFoundation on macOS), a URL PyAV opens (``rtsp://``, ``http(s)://``, ``udp://``,
``srt://``, ``rtmp://``, ``tcp://``), or a video file. A stream that breaks off is
reopened up to ``retries`` times (a camera too), each attempt said in one line through
``on_event``; a source that cannot be opened at all raises
:class:`~affectseq.errors.InputError` at once.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from affectseq.errors import InputError

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "srt://", "tcp://", "rtp://")
# Frames waiting for the model at most. 8 frames (a third of a second at 24 fps) absorb the
# occasional slow frame (a full face detection) without dropping; a consumer that stays
# behind loses the oldest frames instead of piling them up.
DEFAULT_BUFFER_FRAMES = 8
DEFAULT_RETRIES = 3
# Retries count consecutive breaks: a connection that runs this long resets the count.
HEALTHY_SEC = 30.0
OPEN_TIMEOUT_SEC = 10.0
READ_TIMEOUT_SEC = 10.0


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """One frame as captured: ``time_sec`` is stream time; ``captured_at`` (``time.monotonic()``) and
    ``wall_time`` (``time.time()``) are when it was read, the start of its capture -> row latency."""

    frame_idx: int
    time_sec: float
    rgb: np.ndarray
    captured_at: float
    wall_time: float


@dataclass(frozen=True)
class LiveSource:
    """A parsed SOURCE: ``kind`` is ``"camera"``, ``"url"`` or ``"file"``; ``target`` what PyAV opens."""

    kind: str
    target: str
    realtime: bool = False

    @property
    def live(self) -> bool:
        """True when frames arrive on their own clock (camera, stream, a file with ``realtime``)."""
        return self.kind != "file" or self.realtime

    def describe(self) -> str:
        return {"camera": f"camera {self.target}", "url": self.target,
                "file": f"{self.target}{' (paced at its frame rate)' if self.realtime else ''}"}[self.kind]


def parse_source(text: str, realtime: bool = False) -> LiveSource:
    """``"0"`` -> camera 0; a stream URL; else a video file (InputError when it does not exist)."""
    text = str(text).strip()
    if text.isdigit():
        return LiveSource("camera", text, realtime=True)
    if text.lower().startswith(STREAM_SCHEMES):
        return LiveSource("url", text, realtime=True)
    path = Path(text)
    if not path.exists():
        raise InputError(path, "no such file, camera index or stream URL (URLs start with rtsp://, http://, ...)")
    if not path.is_file():
        raise InputError(path, "not a video file")
    return LiveSource("file", str(path), realtime=realtime)


class FrameBuffer:
    """A bounded FIFO of frames between the capture thread and the consumer; full: the oldest is dropped.

    ``offered`` counts every frame put, ``dropped`` those pushed out unread. ``close(error)``
    ends it: :meth:`get` returns the frames left, then None (and :attr:`error` says why, if
    the source failed).
    """

    def __init__(self, capacity: int = DEFAULT_BUFFER_FRAMES):
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.offered = 0
        self.dropped = 0
        self.error: BaseException | None = None
        self._frames: collections.deque[CapturedFrame] = collections.deque()
        self._closed = False
        self._ready = threading.Condition()

    def put(self, frame: CapturedFrame) -> None:
        with self._ready:
            self.offered += 1
            if len(self._frames) >= self.capacity:
                self._frames.popleft()
                self.dropped += 1
            self._frames.append(frame)
            self._ready.notify()

    def get(self, timeout: float | None = None) -> CapturedFrame | None:
        """The oldest waiting frame; None once closed and empty (or after ``timeout`` seconds)."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._frames or self._closed, timeout):
                return None
            return self._frames.popleft() if self._frames else None

    def close(self, error: BaseException | None = None) -> None:
        with self._ready:
            self._closed = True
            self.error = self.error or error
            self._ready.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._frames)


def _open_av(source: LiveSource) -> Any:
    """``av.open`` for a camera or URL source; InputError naming the source when it cannot be opened."""
    import av

    kwargs: dict[str, Any] = {"timeout": (OPEN_TIMEOUT_SEC, READ_TIMEOUT_SEC)}
    target = source.target
    if source.kind == "camera":
        if sys.platform.startswith("linux"):
            target, kwargs["format"] = f"/dev/video{source.target}", "v4l2"
        elif sys.platform == "darwin":
            target, kwargs["format"] = f"{source.target}:none", "avfoundation"
            kwargs["options"] = {"framerate": "30"}
        else:
            raise InputError(source.target, "camera indices are read on Linux and macOS; elsewhere give the "
                                            "camera as a stream URL")
    try:
        container = av.open(target, mode="r", **kwargs)
    except (av.error.FFmpegError, OSError) as err:
        raise InputError(source.describe(), f"cannot open ({getattr(err, 'strerror', None) or err})") from None
    if not container.streams.video:
        container.close()
        raise InputError(source.describe(), "no video stream")
    return container


def _rate(stream: Any) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return None


class Capture:
    """Frames of a :class:`LiveSource`: :meth:`frames` yields :class:`CapturedFrame` in order.

    Live sources run a reader thread into a :class:`FrameBuffer` of ``buffer_frames``
    (:meth:`open` then :meth:`start`; an unopenable source raises in :meth:`open`); a plain file is
    pulled frame by frame. ``retries``: reopenings after a stream breaks off (0: none).
    ``on_event(text)`` gets one line per reconnection attempt. :attr:`fps` is the source's
    frame rate when it says one.
    """

    def __init__(self, source: LiveSource, *, buffer_frames: int = DEFAULT_BUFFER_FRAMES,
                 retries: int = DEFAULT_RETRIES, retry_wait_sec: float = 1.0,
                 on_event: Callable[[str], None] | None = None):
        self.source = source
        self.buffer = FrameBuffer(buffer_frames)
        self.retries = int(retries)
        self.retry_wait_sec = float(retry_wait_sec)
        self.on_event = on_event or (lambda text: None)
        self.fps: float | None = None
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._first: Any = None

    def open(self) -> "Capture":
        """Open the source: InputError now if it cannot be opened; :attr:`fps` is known after this."""
        if self._first is not None:
            return self
        if self.source.kind == "file":
            from affectseq.io.video import VideoReader

            self._first = VideoReader(self.source.target)  # probes: a non-video is an InputError here
            self.fps = self._first.info.fps or None
        else:
            self._first = _open_av(self.source)
            self.fps = _rate(self._first.streams.video[0])
        return self

    def start(self) -> "Capture":
        """Open the source if not yet open and, for a live one, start reading it (frames now count)."""
        self.open()
        if self.source.live and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="affectseq-live-capture", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading (the thread ends within one frame or one read timeout)."""
        self._stop.set()
        self.buffer.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=READ_TIMEOUT_SEC + 1)
        first, self._first = self._first, None
        if first is not None:  # opened, never read
            first.close()

    def frames(self, until: float | None = None) -> Iterator[CapturedFrame]:
        """Every frame the consumer gets, in order, until the ``time.monotonic()`` deadline ``until``;
        raises the source's error once the buffer is empty."""
        if not self.source.live:
            for frame in self._file_frames(paced=False):
                if until is not None and frame.captured_at >= until:
                    return
                yield frame
            return
        while until is None or time.monotonic() < until:
            frame = self.buffer.get(None if until is None else max(0.0, until - time.monotonic()))
            if frame is not None:
                yield frame
            elif self.buffer.closed and not len(self.buffer):
                if self.buffer.error is not None:
                    raise self.buffer.error
                return

    # -- the reader thread ---------------------------------------------------------------------

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            if self.source.kind == "file":
                for frame in self._file_frames(paced=True):
                    self.buffer.put(frame)
            else:
                self._read_stream()
        except BaseException as err:  # handed to the consumer, which raises it
            error = err
        finally:
            self.buffer.close(error)

    def _file_frames(self, paced: bool) -> Iterator[CapturedFrame]:
        """A file's frames; ``paced``: each released at its own time, as a camera would."""
        reader, self._first = self._first, None
        start = None
        with reader:
            for frame in reader:
                if self._stop.is_set():
                    return
                if paced:
                    now = time.monotonic()
                    start = now - frame.time_sec if start is None else start
                    wait = start + frame.time_sec - now
                    if wait > 0 and self._stop.wait(wait):
                        return
                yield CapturedFrame(frame.frame_idx, float(frame.time_sec), frame.rgb, time.monotonic(), time.time())

    def _read_stream(self) -> None:
        """Decode the camera/URL into the buffer, reopening it up to ``retries`` times after a break."""
        import av

        container, self._first = self._first, None
        frame_idx, time_offset, last_time, failures = 0, 0.0, 0.0, 0
        while not self._stop.is_set():
            reason = None
            opened_at = time.monotonic()
            try:
                first_time = None
                for frame in container.decode(video=0):
                    if self._stop.is_set():
                        return
                    now, wall = time.monotonic(), time.time()
                    stream_time = float(frame.time) if frame.time is not None else now
                    first_time = stream_time if first_time is None else first_time
                    last_time = time_offset + stream_time - first_time
                    rgb = frame.to_ndarray(format="rgb24")
                    self.buffer.put(CapturedFrame(frame_idx, last_time, rgb, now, wall))
                    frame_idx += 1
                    if failures and now - opened_at >= HEALTHY_SEC:
                        failures = 0  # a stream that ran well again gets a fresh retry budget
            except av.error.FFmpegError as err:
                reason = f"read failed ({getattr(err, 'strerror', None) or err})"
            finally:
                container.close()
            if self._stop.is_set() or reason is None:
                return  # a stream that ends cleanly is the end of the run, not a break
            container, failures = self._reopen(reason, failures)
            if container is None:
                return
            time_offset = last_time + (1.0 / self.fps if self.fps else 0.0)

    def _reopen(self, reason: str, failures: int) -> tuple[Any, int]:
        """Bounded reconnection: ``(container, failures)``, or ``(None, n)`` after the last retry (closes the buffer)."""
        while failures < self.retries:
            failures += 1
            self.reconnects += 1
            wait = self.retry_wait_sec * 2 ** (failures - 1)
            self.on_event(f"{self.source.describe()}: {reason}; reconnecting ({failures}/{self.retries}) "
                          f"in {wait:g} s")
            if self._stop.wait(wait):
                return None, failures
            try:
                return _open_av(self.source), failures
            except InputError as err:
                reason = err.problem
        given_up = f"; gave up after {self.retries} reconnection attempts" if self.retries else ""
        self.buffer.close(InputError(self.source.describe(), f"{reason}{given_up}"))
        return None, failures
