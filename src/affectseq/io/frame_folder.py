"""A folder of numbered frame images read as a video: what :class:`~affectseq.io.video.VideoReader` does
when its path is a folder (clip datasets such as DFEW ship clips as frame folders).

* Frames are the folder's regular image files (``.jpg``, ``.png``, ...) in the order of the number in their
  names (``1.jpg`` < ``2.jpg`` < ``10.jpg``; ``00001_00002.jpg``: the last number counts); ``frame_idx``
  is the 0-based position in that order.
* A folder of frames carries no rate: ``fps`` is the rate given (``--fps``), else unknown
  (``VideoInfo.fps`` 0) and ``time_sec`` counts frames at :data:`NOMINAL_FPS`.
* A frame that cannot be decoded ends the stream after the readable frames (:class:`FrameReadError`;
  the reader raises it as :class:`~affectseq.io.video.VideoDecodeError`, as for a truncated video).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from affectseq.errors import InputError

FRAME_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
NOMINAL_FPS = 25.0  # time_sec of a folder without a known rate counts frames at this rate
_NUMBER = re.compile(r"(\d+)")


class FrameReadError(InputError):
    """A frame image of the folder cannot be decoded (after ``frames_read`` readable ones)."""


def frame_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The frame images of ``folder`` in frame order (by the last number in each name, then by name)."""
    folder = Path(folder)
    try:
        names = [p for p in folder.iterdir() if _is_frame_file(p)]
    except OSError as err:
        raise InputError(folder, f"cannot list the frame folder ({err.strerror})") from None

    def order(path: Path) -> tuple[int, str]:
        numbers = _NUMBER.findall(path.stem)
        return (int(numbers[-1]) if numbers else -1, path.name)

    return sorted(names, key=order)


def is_frame_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding frame images (at least one)."""
    path = Path(path)
    if not path.is_dir():
        return False
    try:
        return any(_is_frame_file(p) for p in path.iterdir())
    except OSError:
        return False


def _is_frame_file(path: Path) -> bool:
    """An image file by its suffix, not hidden, and a regular file (reading a FIFO would wait forever)."""
    return path.suffix.lower() in FRAME_SUFFIXES and not path.name.startswith(".") and path.is_file()


def read_frame(path: Path) -> np.ndarray:
    """One frame image as (H, W, 3) uint8 RGB; InputError when it cannot be decoded."""
    import cv2

    bgr = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(path, "not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def probe_frame_folder(folder: str | os.PathLike[str], fps: float | None = None) -> dict[str, object]:
    """What :func:`affectseq.io.video.probe_video` reports for a frame folder (decodes the first frame)."""
    folder = Path(folder)
    files = frame_files(folder)
    if not files:
        raise InputError(folder, "a folder with no frame images (expected numbered .jpg/.png files)")
    height, width = read_frame(files[0]).shape[:2]
    rate = float(fps) if fps else 0.0
    return dict(path=str(folder), width=width, height=height, fps=rate, frame_count=len(files),
                frame_count_exact=True, duration_sec=len(files) / (rate or NOMINAL_FPS), rotation_deg=0,
                codec="images", has_audio=False, stored_width=width, stored_height=height,
                container_format="frame_folder")


def iter_frame_folder(folder: Path, fps: float, stride: int, target_fps: float | None, start_sec: float | None,
                      end_sec: float | None) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(frame_idx, time_sec, rgb)`` of the folder's frames, sampled as VideoReader samples a video."""
    rate = fps or NOMINAL_FPS
    tick = 1.0 / target_fps if target_fps else None
    next_tick: float | None = None
    first_kept: int | None = None
    for frame_idx, path in enumerate(frame_files(folder)):
        time_sec = frame_idx / rate
        if start_sec is not None and time_sec < start_sec:
            continue
        if end_sec is not None and time_sec >= end_sec:
            return
        if first_kept is None:
            first_kept, next_tick = frame_idx, time_sec
        if tick is not None:
            assert next_tick is not None
            if time_sec + 0.5 / rate < next_tick:
                continue
            while next_tick <= time_sec + 0.5 / rate:
                next_tick += tick
        elif (frame_idx - first_kept) % stride:
            continue
        try:
            rgb = read_frame(path)
        except InputError as err:
            raise FrameReadError(folder, f"frame {path.name} unreadable after {frame_idx} frames "
                                         f"({err.problem})") from None
        yield frame_idx, time_sec, rgb
