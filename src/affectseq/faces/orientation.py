"""Quarter-turn frame rotations and mapping detections back to the upright frame.

Detectors such as MTCNN find faces within about +-30 degrees of upright. Videos
whose container rotation is wrong (a phone clip re-tagged, ``rotated90_single_face.mp4``)
show faces lying on their side; the tracker then detects on a rotated copy of
the frame and maps boxes and landmarks back with these pure functions. Box
coordinates are continuous pixel coordinates (pixel ``i`` spans ``[i, i + 1)``).
"""

from __future__ import annotations

import numpy as np

from affectseq.faces.detector import Detection


def quarter_turns(degrees: int) -> int:
    """Counter-clockwise quarter turns (0-3) for a multiple of 90 degrees."""
    if degrees % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {degrees}")
    return (degrees // 90) % 4


def rotate_frame(rgb: np.ndarray, turns: int) -> np.ndarray:
    """``rgb`` rotated ``turns`` quarter turns counter-clockwise (``np.rot90``), C-contiguous."""
    turns %= 4
    return rgb if turns == 0 else np.ascontiguousarray(np.rot90(rgb, turns))


def points_to_rotated(points: np.ndarray, turns: int, frame_hw: tuple[int, int]) -> np.ndarray:
    """Map ``(N, 2)`` points (x, y) of a ``frame_hw`` frame into the frame rotated by ``turns``."""
    h, w = frame_hw
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    turns %= 4
    if turns == 0:
        return p.copy()
    if turns == 1:
        return np.stack([y, w - x], axis=1)
    if turns == 2:
        return np.stack([w - x, h - y], axis=1)
    return np.stack([h - y, x], axis=1)


def points_from_rotated(points: np.ndarray, turns: int, frame_hw: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`points_to_rotated`: points of the rotated frame back in the ``frame_hw`` frame."""
    h, w = frame_hw
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    xr, yr = p[:, 0], p[:, 1]
    turns %= 4
    if turns == 0:
        return p.copy()
    if turns == 1:
        return np.stack([w - yr, xr], axis=1)
    if turns == 2:
        return np.stack([w - xr, h - yr], axis=1)
    return np.stack([yr, h - xr], axis=1)


def _box_via(points_fn, box, turns: int, frame_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    corners = points_fn(np.array([[x1, y1], [x2, y2]]), turns, frame_hw)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def box_to_rotated(box, turns: int, frame_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """A box (x1, y1, x2, y2) of the ``frame_hw`` frame in the frame rotated by ``turns``."""
    return _box_via(points_to_rotated, box, turns, frame_hw)


def detection_from_rotated(det: Detection, turns: int, frame_hw: tuple[int, int]) -> Detection:
    """A detection made on the rotated frame, expressed in the ``frame_hw`` (upright) frame.

    Landmarks keep their anatomical order (left eye of the face stays first), so
    the alignment warp turns the face upright.
    """
    if turns % 4 == 0:
        return det
    box = _box_via(points_from_rotated, det.box, turns, frame_hw)
    marks = None
    if det.landmarks is not None:
        marks = points_from_rotated(det.landmarks, turns, frame_hw).astype(np.float32)
    return Detection(box, det.score, marks)
