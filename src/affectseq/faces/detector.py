"""The face-detector protocol, the :class:`Detection` record and the backend registry.

Every backend works offline right after ``pip install``:

- ``"mtcnn"`` (default): MTCNN with the weights of the ``mtcnn`` PyPI package, on ONNX
  Runtime (the shipped export) or PyTorch; boxes, scores and five landmarks.
- ``"haar"``: OpenCV's frontal-face Haar cascade; boxes only, no landmarks.

Backends are listed explicitly in :data:`DETECTORS` (no import side effects) and
imported lazily, so ``import affectseq.faces`` stays cheap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from affectseq.errors import ConfigError, InputError

# Landmark order used everywhere in affectseq (image coordinates, upright frame).
LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Detection:
    """One face in one upright RGB frame.

    ``box`` is ``(x1, y1, x2, y2)`` in float pixels of the frame; ``score`` the
    detector's confidence in [0, 1]; ``landmarks`` a float32 ``(5, 2)`` array of
    ``(x, y)`` in :data:`LANDMARK_NAMES` order, or ``None`` for detectors without
    landmarks (Haar).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = field(default=None, compare=False)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)


@runtime_checkable
class FaceDetector(Protocol):
    """What every backend offers: faces of one frame, or of a list of frames."""

    name: str
    has_landmarks: bool

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in one upright ``(H, W, 3)`` uint8 RGB frame, highest score first."""
        ...

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """``detect`` for each frame (backends may batch internally)."""
        ...


# name -> "module:ClassName"; imported on first use.
DETECTORS: dict[str, str] = {
    "mtcnn": "affectseq.faces.mtcnn:MTCNNDetector",
    "haar": "affectseq.faces.haar:HaarDetector",
}
DEFAULT_DETECTOR = "mtcnn"
# Detectors whose networks run on a chosen runtime (``backend="auto"|"onnx"|"torch"``).
NETWORK_DETECTORS: frozenset[str] = frozenset({"mtcnn"})


def available_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return sorted(DETECTORS)


def create_detector(name: str = DEFAULT_DETECTOR, **kwargs: Any) -> FaceDetector:
    """Build the detector backend ``name`` with backend-specific keyword options.

    Raises :class:`~affectseq.errors.ConfigError` naming the valid backends when
    ``name`` is unknown.
    """
    key = name.strip().lower()
    if key not in DETECTORS:
        raise ConfigError(
            f"unknown face detector {name!r}; valid names: {', '.join(available_detectors())}"
        )
    module_name, class_name = DETECTORS[key].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**kwargs)


def check_rgb(rgb: np.ndarray, what: str = "frame", contiguous: bool = True) -> np.ndarray:
    """Validate an ``(H, W, 3)`` uint8 image; return it C-contiguous (unless ``contiguous=False``)."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise InputError(what, f"expected an (H, W, 3) uint8 RGB image, got shape {shape} dtype {dtype}")
    return np.ascontiguousarray(rgb) if contiguous else rgb


def box_iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``boxes_a`` (N, 4) with every box in ``boxes_b`` (M, 4), as (N, M)."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
