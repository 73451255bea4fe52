"""Streaming video reader on PyAV (FFmpeg): one upright RGB frame at a time, exact timestamps.

* ``frame_idx`` is the 0-based index of a frame in decode (presentation) order
  over every frame the decoder outputs; sampling options never renumber frames.
* ``time_sec`` comes from the frame's ``pts * time_base`` (as an exact
  ``Fraction`` first), counted from the stream's start time.
* Frames come out upright: the container's display matrix (phone videos,
  ``rotate`` tags) is applied with the same convention as FFmpeg's autorotate.
* A file is never read whole: packets are demuxed and decoded one by one.
* A truncated or corrupt stream yields its readable frames, then raises
  :class:`VideoDecodeError` (an :class:`~affectseq.errors.InputError`).
* A folder of numbered frame images is read as a video (:mod:`affectseq.io.frame_folder`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from affectseq.errors import InputError
from affectseq.io.frame_folder import is_frame_folder
from affectseq.utils.fsguard import require_regular_file

# FFmpeg demuxers that read still images; a JPEG "video" of one frame is a user mistake.
# The file suffixes (lower case) taken for videos when a folder is listed: predict's inputs, raw videos in a
# dataset tree, video+CSV datasets. A file given by name is read whatever its suffix.
VIDEO_SUFFIXES: frozenset[str] = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts", ".3gp",
})
_IMAGE_DEMUXERS = ("image2", "image2pipe")


class VideoDecodeError(InputError):
    """The stream broke off (truncated file, corrupt packets) after some frames were read."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns about a video's first video stream.

    ``width``/``height`` are of the upright (display) frame; ``stored_width``/
    ``stored_height`` are as coded. ``frame_count`` is exact only when
    ``frame_count_exact`` (every frame was decoded); otherwise it comes from the
    container header or ``duration_sec * fps`` and may differ from the number of
    decodable frames (``../shared/clips/no_face.mp4`` says 98, 95 decode).
    """

    path: str
    width: int
    height: int
    fps: float
    frame_count: int
    frame_count_exact: bool
    duration_sec: float
    rotation_deg: int
    codec: str
    has_audio: bool
    stored_width: int
    stored_height: int
    container_format: str


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One decoded frame: 0-based ``frame_idx``, ``time_sec`` from its timestamp, upright ``rgb`` (H, W, 3) uint8."""

    frame_idx: int
    time_sec: float
    rgb: np.ndarray


def _av():
    # PyAV is imported lazily so `affectseq --help` and data-only code stay light.
    import av

    return av


def _open_container(path: Path):
    """Open ``path`` with PyAV and return ``(container, video_stream)``, mapping failures to InputError."""
    av = _av()
    if not path.exists():
        raise InputError(path, "video file not found")
    require_regular_file(path, "video")  # a FIFO or device would block in FFmpeg's open
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as err:
        raise InputError(path, f"not a readable video ({_ffmpeg_reason(err)})") from None
    except OSError as err:
        raise InputError(path, f"cannot open video: {err}") from None
    try:
        if container.format.name in _IMAGE_DEMUXERS or container.format.name.endswith("_pipe"):
            raise InputError(path, f"a still image ({container.format.name}), not a video")
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["no streams"]
            raise InputError(path, f"no video stream (has: {', '.join(kinds)})")
        stream = container.streams.video[0]
        codec = stream.codec_context
        if codec is None or codec.codec is None or not codec.name or codec.name == "none":
            raise InputError(path, "unsupported video codec (no FFmpeg decoder)")
        # Frame threading decodes several frames in parallel; slice threading
        # helps intra-heavy streams. AUTO picks what the codec supports.
        stream.thread_type = "AUTO"
    except BaseException:
        container.close()
        raise
    return container, stream


def _ffmpeg_reason(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return str(text).strip()


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def _rotation_k(rotation_deg: float) -> int:
    """Quarter turns (counter-clockwise, as ``np.rot90``) for a display rotation in degrees."""
    return int(round(rotation_deg / 90.0)) % 4


def probe_video(path: str | os.PathLike[str], count_frames: bool = False) -> VideoInfo:
    """Describe the first video stream of ``path`` (decodes one frame to read its display rotation).

    With ``count_frames`` every frame is decoded (not converted) to make
    ``frame_count`` exact. Raises ``InputError`` for a missing file, a file that
    is not a video, an audio-only file, an unsupported codec or a stream with no
    decodable frames. A folder of frame images is probed as such (its rate unknown: ``fps`` 0).
    """
    path = Path(path)
    if is_frame_folder(path):
        from affectseq.io.frame_folder import probe_frame_folder

        return VideoInfo(**probe_frame_folder(path))  # type: ignore[arg-type]
    container, stream = _open_container(path)
    try:
        fps = _stream_fps(stream)
        if stream.duration is not None and stream.time_base is not None:
            duration_sec = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration_sec = container.duration / 1_000_000  # AV_TIME_BASE
        else:
            duration_sec = 0.0
        header_frames = int(stream.frames or 0)
        has_audio = bool(container.streams.audio)
        codec = stream.codec_context.name
        fmt = container.format.name
        first = None
        decoded = 0
        for frame in _decode_frames(path, container, stream, stats=None):
            if first is None:
                first = frame
                if not count_frames:
                    break
            decoded += 1
        if first is None:
            raise InputError(path, "video stream has no decodable frames")
        rotation = _rotation_k(getattr(first, "rotation", 0) or 0) * 90
        stored_w, stored_h = first.width, first.height
    finally:
        container.close()
    if rotation in (90, 270):
        width, height = stored_h, stored_w
    else:
        width, height = stored_w, stored_h
    if count_frames:
        frame_count, exact = decoded, True
    elif header_frames > 0:
        frame_count, exact = header_frames, False
    else:
        frame_count, exact = int(round(duration_sec * fps)), False
    if duration_sec <= 0 and fps > 0:
        duration_sec = frame_count / fps
    return VideoInfo(
        path=str(path), width=width, height=height, fps=fps, frame_count=frame_count,
        frame_count_exact=exact, duration_sec=duration_sec, rotation_deg=rotation, codec=codec,
        has_audio=has_audio, stored_width=stored_w, stored_height=stored_h, container_format=fmt,
    )


def header_frame_count(path: str | os.PathLike[str]) -> int:
    """Frame count from the container header alone (no decoding; an estimate, see :class:`VideoInfo`).

    Cheap enough to run over every raw video of a dataset; raises ``InputError``
    like :func:`probe_video` for files that are not videos. A folder of frames: its image count.
    """
    path = Path(path)
    if is_frame_folder(path):
        from affectseq.io.frame_folder import frame_files

        return len(frame_files(path))
    container, stream = _open_container(path)
    try:
        if stream.frames:
            return int(stream.frames)
        if stream.duration is not None and stream.time_base is not None:
            duration_sec = float(stream.duration * stream.time_base)
        else:
            duration_sec = (container.duration or 0) / 1_000_000
        return int(round(duration_sec * _stream_fps(stream)))
    finally:
        container.close()


@dataclass
class _DecodeStats:
    packets: int = 0  # non-empty packets demuxed
    stopped_early: bool = False


def _decode_frames(path: Path, container, stream, stats: _DecodeStats | None) -> Iterator:
    """Decoded ``av.VideoFrame``s packet by packet; the first decode error raises VideoDecodeError."""
    av = _av()
    n_frames = 0
    demuxed = container.demux(stream)
    while True:
        try:
            packet = next(demuxed)
        except StopIteration:
            return
        except av.error.FFmpegError as err:
            raise VideoDecodeError(path, f"container read failed after {n_frames} frames ({_ffmpeg_reason(err)})") from None
        if packet.size and stats is not None:
            stats.packets += 1
        try:
            frames = packet.decode()  # the final empty packet flushes the decoder
        except av.error.FFmpegError as err:
            raise VideoDecodeError(path, f"corrupt stream: decoding failed after {n_frames} frames "
                                         f"({_ffmpeg_reason(err)})") from None
        for frame in frames:
            n_frames += 1
            yield frame


class VideoReader:
    """Iterate over the frames of a video as :class:`VideoFrame` (upright RGB, exact ``time_sec``).

    Sampling: ``stride`` keeps every k-th frame (counted from the first frame at
    or after ``start_sec``); ``target_fps`` keeps the first frame at or after each
    tick of a ``1/target_fps`` clock (all frames when the video is slower);
    ``start_sec``/``end_sec`` bound ``time_sec`` (inclusive start, exclusive end).
    ``frame_idx`` always counts every decoded frame from the start of the file,
    so frames before ``start_sec`` are decoded (not converted) rather than
    seeked over: seeking would lose the exact index.

    The reader holds only the path until iterated (cheap to pickle to worker
    processes); each ``for`` loop opens its own decoder, closed when the loop
    ends. After a complete pass ``frames_decoded`` holds the exact frame count.

    ``path`` may be a folder of numbered frame images (:mod:`affectseq.io.frame_folder`); ``fps`` is
    then its frame rate (a folder carries none; unknown: ``info.fps`` 0). Ignored for video files.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        stride: int = 1,
        target_fps: float | None = None,
        start_sec: float | None = None,
        end_sec: float | None = None,
        fps: float | None = None,
    ):
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        if target_fps is not None and target_fps <= 0:
            raise ValueError(f"target_fps must be > 0, got {target_fps}")
        if target_fps is not None and stride != 1:
            raise ValueError("choose either stride or target_fps, not both")
        if start_sec is not None and end_sec is not None and end_sec <= start_sec:
            raise ValueError(f"end_sec ({end_sec}) must be after start_sec ({start_sec})")
        self.path = Path(path)
        self.stride = stride
        self.target_fps = target_fps
        self.start_sec = start_sec
        self.end_sec = end_sec
        self._folder = is_frame_folder(self.path)
        if self._folder:
            from affectseq.io.frame_folder import probe_frame_folder

            self.info = VideoInfo(**probe_frame_folder(self.path, fps))  # type: ignore[arg-type]
        else:
            self.info = probe_video(self.path)
        self.frames_decoded: int | None = None
        self._container = None

    def __getstate__(self) -> dict:
        # An open decoder cannot cross processes; the copy opens its own when iterated.
        return {**self.__dict__, "_container": None}

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the decoder of an iteration still in progress (no-op otherwise)."""
        if self._container is not None:
            self._container.close()
            self._container = None

    def __iter__(self) -> Iterator[VideoFrame]:
        if self._folder:
            yield from self._iterate_folder()
            return
        container, stream = _open_container(self.path)
        self._container = container
        try:
            yield from self._iterate(container, stream)
        finally:
            container.close()
            if self._container is container:
                self._container = None

    def _iterate_folder(self) -> Iterator[VideoFrame]:
        from affectseq.io.frame_folder import FrameReadError, iter_frame_folder

        last = -1
        frames = iter_frame_folder(self.path, self.info.fps, self.stride, self.target_fps, self.start_sec,
                                   self.end_sec)
        try:
            for frame_idx, time_sec, rgb in frames:
                last = frame_idx
                yield VideoFrame(frame_idx=frame_idx, time_sec=time_sec, rgb=rgb)
        except FrameReadError as err:
            raise VideoDecodeError(err.path, err.problem) from None
        if self.end_sec is None and self.start_sec is None:
            self.frames_decoded = self.info.frame_count if last >= 0 else None

    def _iterate(self, container, stream) -> Iterator[VideoFrame]:
        time_base = stream.time_base or Fraction(1, 1)
        start_pts = stream.start_time or 0
        fps = self.info.fps or 25.0
        k = _rotation_k(self.info.rotation_deg)
        start = self.start_sec if self.start_sec is not None else float("-inf")
        tick = 1.0 / self.target_fps if self.target_fps else None
        next_tick: float | None = None
        first_kept_idx: int | None = None
        stats = _DecodeStats()
        frame_idx = -1
        last_time = None
        for frame in _decode_frames(self.path, container, stream, stats):
            frame_idx += 1
            if frame.pts is not None:
                time_sec = float((frame.pts - start_pts) * time_base)
            else:  # some AVI/raw streams carry no timestamps: fall back to the nominal rate
                time_sec = (last_time + 1.0 / fps) if last_time is not None else 0.0
            last_time = time_sec
            if time_sec < start:
                continue
            if self.end_sec is not None and time_sec >= self.end_sec:
                stats.stopped_early = True
                break
            if first_kept_idx is None:
                first_kept_idx = frame_idx
                next_tick = time_sec
            if tick is not None:
                # Half a frame of tolerance keeps e.g. 30 -> 15 fps at exactly every 2nd frame.
                if time_sec + 0.5 / fps < next_tick:
                    continue
                while next_tick <= time_sec + 0.5 / fps:
                    next_tick += tick
            elif (frame_idx - first_kept_idx) % self.stride:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            if k:
                rgb = np.ascontiguousarray(np.rot90(rgb, k))
            yield VideoFrame(frame_idx=frame_idx, time_sec=time_sec, rgb=rgb)
        if stats.stopped_early:
            return
        n_decoded = frame_idx + 1
        if n_decoded == 0:
            raise InputError(self.path, "video stream has no decodable frames")
        problem = _truncation(self.path, container, stream, stats.packets, last_time, fps)
        if problem:
            raise VideoDecodeError(self.path, f"truncated: {problem} ({n_decoded} frames decoded)")
        self.frames_decoded = n_decoded


def _truncation(path: Path, container, stream, n_packets: int, last_time: float | None, fps: float) -> str | None:
    """Why a stream that decoded to its end looks cut short, or None.

    FFmpeg ends a cut file quietly, so the evidence is indirect: an index (mp4/mov)
    pointing past the end of the file; else, for containers with a sparse index
    (mkv/webm cues), fewer packets than the header's frame count or a last frame
    well before the header's duration.
    """
    entries = getattr(stream, "index_entries", None) or []
    file_size = path.stat().st_size
    if entries:
        index_end = max(entry.pos + entry.size for entry in entries)
        if index_end > file_size:
            return f"the file has {file_size} bytes but its index points to data up to byte {index_end}"
        if len(entries) >= n_packets:
            return None  # a complete index that fits in the file
    header_frames = int(stream.frames or 0)
    if header_frames and n_packets < header_frames:
        return f"the stream ends after {n_packets} of the {header_frames} frames its header lists"
    if stream.duration is not None and stream.time_base is not None:
        expected_sec = float(stream.duration * stream.time_base)
    elif container.duration is not None and not container.streams.audio:
        # The container duration covers every stream; without audio it is the video's.
        expected_sec = container.duration / 1_000_000
    else:
        return None
    if last_time is not None and fps > 0:
        ends_sec = last_time + 1.0 / fps
        if expected_sec - ends_sec > max(2.0 / fps, 0.02 * expected_sec):
            return f"the last frame ends at {ends_sec:.3f} s but the header says {expected_sec:.3f} s"
    return None


def iter_frames(path: str | os.PathLike[str], **options) -> Iterator[VideoFrame]:
    """Shorthand for ``iter(VideoReader(path, **options))``."""
    with VideoReader(path, **options) as reader:
        yield from reader
