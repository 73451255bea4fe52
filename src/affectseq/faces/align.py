"""Face alignment as pure functions: a similarity warp onto the standard five-point template.

Aff-Wild2's ``cropped_aligned`` frames and most face-recognition crops use the
112x112 five-point template below (ArcFace/InsightFace convention). Faces with
landmarks (MTCNN) are warped by the least-squares similarity (Umeyama) that maps
their five points onto it; faces with a box only (Haar) are framed by scale and
shift so that their box lands where an MTCNN box lands on average in an aligned
crop (:data:`TEMPLATE_BOX_112`), so both paths give comparable framing.
"""

from __future__ import annotations

import cv2
import numpy as np

from affectseq.faces.detector import Detection, check_rgb

# (x, y) in a 112x112 crop: left eye, right eye, nose, left/right mouth corner.
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)

# Where an MTCNN box (x1, y1, x2, y2) falls in the aligned 112x112 crop, on average
# over frontal faces (measured by benchmarks/faces_detection.py --calibrate on
# multi_face.jpg, single_face.jpg and WolfgangLanger_Pexels.mp4).
TEMPLATE_BOX_112 = (15.9, 12.0, 94.7, 118.9)

# Below this warp scale, shrink with area averaging first: a bilinear warp alone
# would alias large faces (a 400-pixel face into 112 pixels).
_MIN_DIRECT_SCALE = 0.7


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst``.

    ``src`` and ``dst`` are ``(N, 2)`` point sets, ``N >= 2``. Returns the ``(2, 3)``
    matrix ``M`` with ``dst ~= src @ M[:, :2].T + M[:, 2]`` (Umeyama 1991, no reflection).
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if len(src) != len(dst) or len(src) < 2:
        raise ValueError(f"need two equal point sets of at least 2 points, got {src.shape} and {dst.shape}")
    mu_src, mu_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mu_src, dst - mu_dst
    var_src = (src_c ** 2).sum() / len(src)
    if var_src <= 1e-12:
        raise ValueError("source points coincide; no similarity is defined")
    cov = dst_c.T @ src_c / len(src)
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0  # no reflections: a mirrored face is still the same face
    rot = u @ np.diag(d) @ vt
    scale = (sing * d).sum() / var_src
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = mu_dst - matrix[:, :2] @ mu_src
    return matrix


def landmarks_transform(landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The ``(2, 3)`` similarity taking five landmarks onto the template scaled to ``size``."""
    return umeyama_similarity(landmarks, TEMPLATE_112 * (size / 112.0))


def box_transform(box: tuple[float, float, float, float], size: int = 112) -> np.ndarray:
    """The ``(2, 3)`` scale-and-shift taking a face box onto :data:`TEMPLATE_BOX_112` scaled to ``size``.

    One uniform scale (the mean of the width and height ratios) keeps the face's
    aspect ratio; the box centre goes to the template box centre.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    tx1, ty1, tx2, ty2 = (v * size / 112.0 for v in TEMPLATE_BOX_112)
    width, height = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
    scale = 0.5 * ((tx2 - tx1) / width + (ty2 - ty1) / height)
    matrix = np.zeros((2, 3))
    matrix[0, 0] = matrix[1, 1] = scale
    matrix[0, 2] = (tx1 + tx2) / 2 - scale * (x1 + x2) / 2
    matrix[1, 2] = (ty1 + ty2) / 2 - scale * (y1 + y2) / 2
    return matrix


def face_transform(detection: Detection, size: int = 112) -> np.ndarray:
    """The alignment warp for ``detection``: from landmarks when it has them, else from its box."""
    if detection.landmarks is not None and np.all(np.isfinite(detection.landmarks)):
        try:
            return landmarks_transform(detection.landmarks, size)
        except ValueError:
            pass  # degenerate landmarks (all in one point): fall back to the box
    return box_transform(detection.box, size)


def warp_face(rgb: np.ndarray, matrix: np.ndarray, size: int = 112) -> np.ndarray:
    """Apply a ``(2, 3)`` similarity to ``rgb`` into a ``size``x``size`` crop; outside is black.

    Large faces are first shrunk with area averaging (anti-aliasing), then warped.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < _MIN_DIRECT_SCALE:
        # Crop the pre-image of the output square, shrink it, and warp the rest of the way.
        inv = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
        pre = corners @ inv.T
        h, w = rgb.shape[:2]
        x1 = int(np.clip(np.floor(pre[:, 0].min()) - 2, 0, w))
        y1 = int(np.clip(np.floor(pre[:, 1].min()) - 2, 0, h))
        x2 = int(np.clip(np.ceil(pre[:, 0].max()) + 2, 0, w))
        y2 = int(np.clip(np.ceil(pre[:, 1].max()) + 2, 0, h))
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            shrink = min(1.0, scale / _MIN_DIRECT_SCALE)
            region = rgb[y1:y2, x1:x2]
            new_size = (max(1, round(region.shape[1] * shrink)), max(1, round(region.shape[0] * shrink)))
            small = cv2.resize(region, new_size, interpolation=cv2.INTER_AREA)
            fx, fy = new_size[0] / region.shape[1], new_size[1] / region.shape[0]
            # Pixel q of the shrunk region is pixel p = (q + 0.5) / f - 0.5 + (x1, y1) of
            # the frame (resize keeps pixel centres), and the output is M @ p.
            local = matrix.copy()
            local[:, 0] = matrix[:, 0] / fx
            local[:, 1] = matrix[:, 1] / fy
            offset = np.array([x1 + 0.5 / fx - 0.5, y1 + 0.5 / fy - 0.5])
            local[:, 2] = matrix[:, :2] @ offset + matrix[:, 2]
            return cv2.warpAffine(small, local, (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def align_face(rgb: np.ndarray, detection: Detection, size: int = 112) -> np.ndarray:
    """The ``(size, size, 3)`` uint8 aligned crop of ``detection`` in the upright RGB frame ``rgb``.

    Uses the five-point similarity warp when the detection has landmarks and the
    box-only framing otherwise; both give the Aff-Wild2 ``cropped_aligned``-like framing.
    """
    rgb = check_rgb(rgb)
    if size < 8:
        raise ValueError(f"aligned crop size must be at least 8 pixels, got {size}")
    return warp_face(rgb, face_transform(detection, size), size)


def align_faces(rgb: np.ndarray, detections: list[Detection], size: int = 112) -> np.ndarray:
    """Aligned crops of several faces of one frame as ``(N, size, size, 3)`` uint8."""
    if not detections:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([align_face(rgb, d, size) for d in detections])
