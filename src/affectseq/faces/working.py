"""Working resolution: frames larger than :data:`WORK_MAX_SIDE` are handled as a bounded copy.

Memory and time of the face stage must not grow with the video's resolution: an 8K
frame is 100 MB of RGB, and every copy of it (rotations, grey conversions, buffered
frames) costs as much again. So a frame whose longer side exceeds ``WORK_MAX_SIDE``
(1920 px, i.e. 1080p frames are never resized) is shrunk once, with area averaging,
to fit within it; detection, tracking and alignment run on that copy, and boxes and
landmarks are mapped back to the full-resolution frame with :func:`detection_to_full`.
Aligned crops are 112 px (models take 48-112 px), so a 1920 px copy loses nothing for
any face big enough to be detected at 1080p.

``FaceTracker`` applies this itself to whatever frame it is given (boxes always come
back in that frame's coordinates); ``predict`` shrinks frames right after decoding
(:func:`working_frame`), so only bounded copies wait in its queues.
"""

from __future__ import annotations

import cv2
import numpy as np

from affectseq.faces.detector import Detection

WORK_MAX_SIDE = 1920


def working_scale(frame_hw: tuple[int, int], max_side: int | None = WORK_MAX_SIDE) -> float:
    """Factor (<= 1) from a ``frame_hw`` frame to its working copy; 1.0 when it already fits."""
    longest = max(int(frame_hw[0]), int(frame_hw[1]))
    if not max_side or longest <= max_side:
        return 1.0
    return max_side / longest


def working_frame(rgb: np.ndarray, max_side: int | None = WORK_MAX_SIDE) -> tuple[np.ndarray, float]:
    """``(copy, scale)``: ``rgb`` shrunk to fit ``max_side`` (``scale`` = copy / original), or itself and 1.0."""
    scale = working_scale(rgb.shape[:2], max_side)
    if scale == 1.0:
        return rgb, 1.0
    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    factor = min(w // size[0], h // size[1])
    if factor >= 2:
        # Decimating by an integer step first bounds the cost of the area resize (16K -> 1920 would
        # otherwise average ~70 pixels per output pixel); the area step still removes aliasing.
        step = max(1, factor // 2)
        rgb = rgb[::step, ::step]
    small = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA)
    # The scale actually applied per axis differs from ``scale`` by under a pixel; use the x ratio.
    return small, size[0] / w


def scale_detection(det: Detection, factor: float) -> Detection:
    """``det`` with its box and landmarks multiplied by ``factor`` (the score unchanged)."""
    if factor == 1.0:
        return det
    box = tuple(float(v) * factor for v in det.box)
    marks = None if det.landmarks is None else (np.asarray(det.landmarks, np.float64) * factor).astype(np.float32)
    return Detection(box, det.score, marks)  # type: ignore[arg-type]


def detection_to_full(det: Detection, scale: float) -> Detection:
    """A detection on a working copy made with ``scale`` in the full-resolution frame's pixels."""
    return scale_detection(det, 1.0 / scale)


def detection_to_working(det: Detection, scale: float) -> Detection:
    """Inverse of :func:`detection_to_full`."""
    return scale_detection(det, scale)
