"""OpenCV Haar-cascade face detector: the zero-weights fallback (boxes only, no landmarks).

Haar boxes are squares centred a little above an MTCNN box and narrower than its
height. To keep alignment framing comparable across backends, boxes are mapped to
the MTCNN box convention with a fixed calibration (:data:`HAAR_TO_MTCNN`) measured
by ``benchmarks/faces_detection.py --calibrate`` on frontal faces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from affectseq.errors import InputError
from affectseq.faces.detector import Detection, check_rgb

# MTCNN box relative to the Haar square of side s centred at (cx, cy):
# centre shift (dx, dy) and size (w, h), all in units of s.
HAAR_TO_MTCNN = (0.0, 0.02, 0.81, 1.11)

CASCADE_FILE = "haarcascade_frontalface_default.xml"


class HaarDetector:
    """Viola-Jones frontal-face cascade from ``cv2.data.haarcascades``.

    Args:
        min_face_px: smallest face side searched for, in frame pixels.
        max_side: frames whose longer side exceeds this are downscaled first (speed).
        scale_factor: cascade pyramid step.
        min_neighbors: overlapping raw hits required for a face (higher: fewer false faces).
        calibrate_boxes: map boxes to the MTCNN convention (see module docstring).
    """

    name = "haar"
    has_landmarks = False

    def __init__(
        self,
        min_face_px: float = 40.0,
        max_side: int = 720,
        scale_factor: float = 1.1,
        min_neighbors: int = 6,
        calibrate_boxes: bool = True,
    ) -> None:
        path = Path(cv2.data.haarcascades) / CASCADE_FILE
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise InputError(path, "could not load OpenCV's Haar cascade (opencv-python-headless < 5 ships it)")
        self.min_face_px = float(min_face_px)
        self.max_side = int(max_side)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.calibrate_boxes = bool(calibrate_boxes)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in one upright RGB frame, most confident first (score in [0, 1])."""
        rgb = check_rgb(rgb)
        scale = min(1.0, self.max_side / max(rgb.shape[:2]))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_side = max(int(round(self.min_face_px * scale)), 20)
        rects, _, weights = self._cascade.detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(min_side, min_side), outputRejectLevels=True,
        )
        dets = []
        for (x, y, w, h), weight in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            box = (x / scale, y / scale, (x + w) / scale, (y + h) / scale)
            if self.calibrate_boxes:
                box = haar_box_to_mtcnn(box)
            # The cascade's last-stage weight is unbounded; squash it into (0, 1).
            dets.append(Detection(box, float(1.0 / (1.0 + np.exp(-float(weight)))), None))
        return sorted(dets, key=lambda d: -d.score)

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """``detect`` per frame."""
        return [self.detect(f) for f in frames]


def haar_box_to_mtcnn(box: tuple[float, float, float, float],
                      calibration: tuple[float, float, float, float] = HAAR_TO_MTCNN,
                      ) -> tuple[float, float, float, float]:
    """Map a Haar square to the MTCNN box convention with ``calibration`` = (dx, dy, w, h) in box units."""
    x1, y1, x2, y2 = box
    side = 0.5 * ((x2 - x1) + (y2 - y1))
    cx = (x1 + x2) / 2 + calibration[0] * side
    cy = (y1 + y2) / 2 + calibration[1] * side
    w, h = calibration[2] * side, calibration[3] * side
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
