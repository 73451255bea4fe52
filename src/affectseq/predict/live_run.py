"""A live run: a source's frames through a :class:`~affectseq.predict.live_session.LiveSession`, rows as they come.

``affectseq live`` and :func:`affectseq.live` iterate a :class:`LiveRun`. The capture
thread never waits for the model: frames it cannot hand over in time are dropped from
a bounded buffer (:class:`~affectseq.predict.live_capture.FrameBuffer`) and counted, so a
slow model -- or a slow consumer of the rows -- costs frames, never memory.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator

from affectseq.faces.settings import FACE_PARAMS, FaceSettings
from affectseq.predict.live_capture import DEFAULT_BUFFER_FRAMES, DEFAULT_RETRIES, Capture, parse_source
from affectseq.predict.live_session import LiveSession, LiveStats
from affectseq.predict.stages import ModelBundle
from affectseq.utils.params import Boolean, Interval, Param
from affectseq.utils.prefetch import prefetch

PLAN_AHEAD = 1  # planned frames waiting for tracking and the model


@dataclass(frozen=True)
class LiveOptions(FaceSettings):
    """How a live run reads its source and finds faces (the ``affectseq live`` options): the face settings
    (:class:`~affectseq.faces.settings.FaceSettings`, the first three fields), then the live ones, each
    declared once in ``PARAMS`` (checked on construction, the command line's options made from it)."""

    PARAMS: ClassVar[dict[str, Param]] = {
        **FACE_PARAMS,
        "realtime": Param(False, Boolean(), "a file: release its frames at its own frame rate, as a camera would "
                          "(frames the model cannot keep up with are dropped); without it every frame of a file "
                          "is processed"),
        "max_seconds": Param(None, Interval(float, 0.001, None), "stop after this many seconds (wall time)", nullable=True),
        "buffer_frames": Param(DEFAULT_BUFFER_FRAMES, Interval(int, 1, 1000),
                               "frames that may wait for the model; when more arrive the oldest is dropped "
                               "(default %(default)s)"),
        "retries": Param(DEFAULT_RETRIES, Interval(int, 0, 1000),
                         "reconnection attempts after a stream breaks off (default %(default)s)"),
        "retry_wait_sec": Param(1.0, Interval(float, 0.0, 600.0),
                                "seconds before the first reconnection attempt, doubled for each next one "
                                "(default %(default)s)"),
    }

    realtime: bool = False
    max_seconds: float | None = None
    buffer_frames: int = DEFAULT_BUFFER_FRAMES
    retries: int = DEFAULT_RETRIES
    retry_wait_sec: float = 1.0


class LiveRun:
    """An iterator of live rows (dicts, see :mod:`.live_session`) from ``source``; :attr:`stats` counts them.

    ``source``: a camera index, a stream URL or a video file (``options.realtime``: paced
    at its frame rate, dropping frames when behind, as a camera; otherwise every frame).
    Opening happens on construction, so an unopenable source raises
    :class:`~affectseq.errors.InputError` here. The run ends at the end of the stream,
    after ``options.max_seconds``, or when :meth:`close` is called (also by ``with``).
    """

    def __init__(self, source: str | os.PathLike[str], bundle: ModelBundle, options: LiveOptions = LiveOptions(),
                 on_event: Callable[[str], None] | None = None, face_source: Any = None):
        self.source = parse_source(os.fspath(source), realtime=options.realtime)
        self.options = options
        self.capture = Capture(self.source, buffer_frames=options.buffer_frames, retries=options.retries,
                               retry_wait_sec=options.retry_wait_sec, on_event=on_event)
        self.capture_fps: float | None = None
        self.session: LiveSession | None = None
        self._bundle, self._face_source = bundle, face_source
        self._rows: Iterator[dict[str, Any]] | None = None
        self._open()

    def _open(self) -> None:
        opts = self.options
        self.capture.open()  # raises for an unopenable source before any model work
        try:
            self.session = LiveSession(self._bundle, opts, fps=self.capture.fps, face_source=self._face_source)
            if self._face_source is None:
                self.session.warm_up()
            self.capture.start()  # a live source's clock starts once the model is ready
        except BaseException:
            self.capture.stop()
            raise
        self.session.stats.started_at = time.monotonic()
        self._rows = self._generate()

    @property
    def stats(self) -> LiveStats:
        """Counts so far (final after the run ends): offered/processed/dropped frames, latency. At the end,
        offered = processed + dropped (frames still waiting when the run stopped are dropped ones)."""
        assert self.session is not None
        stats = self.session.stats
        if stats.ended_at is not None:
            return stats
        if self.source.live:
            stats.offered, stats.dropped = self.capture.buffer.offered, self.capture.buffer.dropped
        else:
            stats.offered = stats.processed
        return stats

    @property
    def columns(self) -> list[str]:
        assert self.session is not None
        return self.session.columns

    def __iter__(self) -> "LiveRun":
        return self

    def __next__(self) -> dict[str, Any]:
        assert self._rows is not None
        return next(self._rows)

    def close(self) -> None:
        """Stop capturing; the stats are final."""
        if self._rows is not None:
            self._rows.close()  # a started run finishes in its generator's ``finally``
        self._finish()  # one never iterated: closing an unstarted generator runs no ``finally``

    def _finish(self) -> None:
        """Stop the capture once and make the stats final: frames still waiting count as dropped."""
        if self.session is None or self.session.stats.ended_at is not None:
            return
        self.capture.stop()
        final = self.stats
        final.dropped = final.offered - final.processed
        final.ended_at = time.monotonic()

    def __enter__(self) -> "LiveRun":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _generate(self) -> Iterator[dict[str, Any]]:
        assert self.session is not None
        session, stats = self.session, self.session.stats
        deadline = None if self.options.max_seconds is None else stats.started_at + self.options.max_seconds
        # Full detections run in a second thread, one frame ahead at most: when it is the slow
        # step, frames wait (and are dropped) in the capture buffer, never between the two threads.
        planned = prefetch(session.planned(self.capture.frames(until=deadline)), PLAN_AHEAD, "affectseq-live-plan")
        try:
            for frame, work, plan in planned:
                yield from session.process(frame, work, plan)
        finally:
            self.capture.stop()  # first: the planning thread may be waiting for a frame
            planned.close()
            self._finish()
