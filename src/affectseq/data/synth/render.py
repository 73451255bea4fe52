"""Drawing synthetic faces with OpenCV, degrading frames, and cutting ABAW-like aligned crops.

A face is described in canonical units (face half-height = 1, x right, y down, depth z towards
the camera), projected with a pseudo-3D yaw/pitch (features with depth shift when the head
turns), then rolled, scaled and placed in the raw frame. Everything is drawn with sub-pixel
anti-aliased polygons so small motions stay smooth.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from affectseq.data.synth.nuisance import Identity

_SHIFT = 4  # fixed-point bits for cv2 drawing (1/16 pixel precision)
_SCALE = float(1 << _SHIFT)
_CROP_CENTER = (0.0, 0.08)  # canonical point at the crop centre (between eyes and mouth)
_CROP_HALF = 1.3            # canonical half-size shown in an aligned crop (face plus a margin)
_MOUTH_DARK = (70, 20, 30)
_GLASSES = (25, 25, 30)
_T = np.linspace(0.0, 1.0, 11)


@dataclass(frozen=True)
class Pose:
    """Placement of a face in the raw frame for one frame."""

    center_xy: tuple[float, float]
    face_height_px: float
    yaw: float
    pitch: float
    roll: float

    def __post_init__(self) -> None:
        # Pseudo-3D yaw/pitch, then roll, scale and shift, folded into one affine map of (x, y)
        # plus a depth term: pixels = pts @ linear.T + z * depth_dir + center.
        c, s = np.cos(self.roll), np.sin(self.roll)
        rot = np.array([[c, -s], [s, c]]) * (self.face_height_px / 2.0)
        object.__setattr__(self, "_linear", rot @ np.diag([np.cos(self.yaw), np.cos(self.pitch)]))
        object.__setattr__(self, "_depth_dir", rot @ np.array([np.sin(self.yaw), np.sin(self.pitch)]))
        object.__setattr__(self, "_center", np.asarray(self.center_xy, dtype=np.float64))
        object.__setattr__(self, "_flat", rot)

    def project(self, pts: np.ndarray, z: float | np.ndarray = 0.0) -> np.ndarray:
        """Canonical points (K, 2) with depth ``z`` (scalar or (K,)) -> raw-frame pixels (K, 2)."""
        depth = np.asarray(z, dtype=np.float64).reshape(-1, 1) * self._depth_dir  # type: ignore[attr-defined]
        return pts @ self._linear.T + depth + self._center  # type: ignore[attr-defined]

    def project_outline(self, pts: np.ndarray) -> np.ndarray:
        """Silhouette points (head outline, hair, neck): rolled, scaled and shifted, not foreshortened,
        as the outline of a turning round head keeps its width."""
        return pts @ self._flat.T + self._center  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=16)
def _unit_circle(n: int) -> np.ndarray:
    angles = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28) -> np.ndarray:
    return _unit_circle(n) * (rx, ry) + (cx, cy)


def _bezier(left: np.ndarray, mid: np.ndarray, right: np.ndarray) -> np.ndarray:
    # Quadratic curve through ``mid`` at t=0.5 (control point chosen accordingly).
    ctrl = 2.0 * mid - (left + right) / 2.0
    t = _T[:, None]
    return (1 - t) ** 2 * left + 2 * t * (1 - t) * ctrl + t**2 * right


def _fill(img: np.ndarray, pts: np.ndarray, colour: tuple[int, ...]) -> None:
    cv2.fillPoly(img, [np.round(pts * _SCALE).astype(np.int32)], colour, cv2.LINE_AA, _SHIFT)


def _line(img: np.ndarray, pts: np.ndarray, colour: tuple[int, ...], thickness: float) -> None:
    cv2.polylines(
        img, [np.round(pts * _SCALE).astype(np.int32)], False, colour,
        max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT,
    )


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, v * factor))) for v in rgb)  # type: ignore[return-value]


def draw_face(
    img: np.ndarray,
    identity: Identity,
    geometry: np.ndarray,
    pose: Pose,
    mouth_occluded: bool,
    eyes_occluded: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one person (shoulders, head, features, occluders) on ``img`` in place.

    ``geometry`` is the observed geometry vector (``affect.GEOMETRY_NAMES`` order).
    Returns the face box ``(x1, y1, x2, y2)`` and five landmarks (eyes, nose tip, mouth corners),
    in raw-frame pixels, in MTCNN order (image-left eye first).
    """
    # Long because: one face drawn in painter's order (shoulders, head, eyes, nose, mouth, occluders) from the
    # same eight geometry values and the on_face projection; split, each piece would take most of them.
    curve, mouth_open, width, asym, brow_raise, brow_tilt, eye_open, wrinkle = (float(v) for v in geometry)
    mouth_open, wrinkle = max(mouth_open, 0.0), max(wrinkle, 0.0)
    px = pose.face_height_px / 2.0  # pixels per canonical unit
    aspect = identity.face_aspect
    skin = identity.skin_rgb

    def on_face(pts: np.ndarray, bump: float | np.ndarray = 0.0) -> np.ndarray:
        # Depth of a point on the head, an ellipsoid as deep as it is wide: turned features slide
        # towards the silhouette but never past it; ``bump`` lifts nose, lips, occluders off the surface.
        z = aspect * np.sqrt(np.clip(1.0 - (pts[:, 0] / aspect) ** 2 - pts[:, 1] ** 2, 0.0, None))
        return pose.project(pts, z + bump)

    _fill(img, pose.project_outline(_ellipse(0.0, 1.95, 1.55, 0.75)), identity.shirt_rgb)
    _fill(img, pose.project_outline(np.array([[-0.3, 0.6], [0.3, 0.6], [0.33, 1.4], [-0.33, 1.4]])), _shade(skin, 0.85))
    hair = _ellipse(0.0, -0.1, aspect * 1.08, 1.0, 32)
    _fill(img, pose.project_outline(hair), identity.hair_rgb)
    outline = pose.project_outline(_ellipse(0.0, 0.0, aspect, 1.0, 36))
    _fill(img, outline, skin)
    hairline = -0.9 + identity.hair_depth
    cap = hair[hair[:, 1] < hairline]
    if len(cap) >= 3:
        _fill(img, pose.project_outline(cap), identity.hair_rgb)  # a contiguous arc: ellipse points are in angle order

    eye_centers = []
    eye_h = float(np.clip(0.065 * (1.0 + 0.8 * eye_open), 0.008, 0.14))
    for side in (-1.0, 1.0):
        cx, cy = side * 0.33 * identity.eye_spacing, -0.2
        eye_centers.append(on_face(np.array([[cx, cy]]))[0])
        _fill(img, on_face(_ellipse(cx, cy, 0.15, eye_h, 16)), (245, 245, 240))
        _fill(img, on_face(_ellipse(cx, cy, 0.055, min(0.055, eye_h), 12), 0.02), identity.iris_rgb)
        upper_lid = _ellipse(cx, cy, 0.15, eye_h, 16)[[8, 9, 10, 11, 12, 13, 14, 15, 0]]
        _line(img, on_face(upper_lid, 0.01), (40, 30, 30), 0.025 * px)
        brow_y = -0.42 - 0.12 * brow_raise
        brow = np.array([
            [side * 0.12 * identity.eye_spacing, brow_y - 0.10 * brow_tilt],
            [side * 0.32 * identity.eye_spacing, brow_y - 0.05],
            [side * 0.52 * identity.eye_spacing, brow_y + 0.04 * brow_tilt],
        ])
        _line(img, on_face(brow, 0.02), _shade(identity.hair_rgb, 0.7), 0.055 * px)
        if wrinkle > 0.15:
            fold = np.array([[side * 0.06, -0.14], [side * (0.06 + 0.06 * wrinkle), -0.04]])
            _line(img, on_face(fold, 0.03), _shade(skin, 0.6), 0.02 * px)

    nose_tip = on_face(np.array([[0.0, 0.15 - 0.03 * wrinkle]]), 0.18)[0]
    nose = np.array([[0.0, -0.1], [0.05, 0.12 - 0.03 * wrinkle], [-0.02, 0.17 - 0.03 * wrinkle]])
    _line(img, on_face(nose, np.array([0.05, 0.18, 0.12])), _shade(skin, 0.7), 0.025 * px)

    mouth_y, half_w = 0.5, 0.26 * (1.0 + 0.3 * width)
    left = np.array([-half_w, mouth_y - 0.13 * curve - 0.10 * asym])
    right = np.array([half_w, mouth_y - 0.13 * curve + 0.05 * asym])
    upper = _bezier(left, np.array([0.0, mouth_y - 0.015 - 0.03 * mouth_open]), right)
    lower = _bezier(left, np.array([0.0, mouth_y + 0.015 + 0.25 * mouth_open]), right)
    lips = _shade((min(255, skin[0] + 30), skin[1], skin[2]), 0.7)
    _fill(img, on_face(np.concatenate([upper, lower[::-1]]), 0.02), _MOUTH_DARK)
    _line(img, on_face(upper, 0.03), lips, 0.035 * px)
    _line(img, on_face(lower, 0.03), lips, 0.045 * px)
    if curve > 0.45:  # smile lines (nasolabial folds) make strong smiles readable
        for side in (-1.0, 1.0):
            fold = np.array([[side * 0.14, 0.2], [side * (half_w + 0.08), mouth_y - 0.13 * curve + 0.05]])
            _line(img, on_face(fold, 0.01), _shade(skin, 0.75), 0.02 * px)

    if eyes_occluded:
        _fill(img, on_face(np.array([[-0.62, -0.33], [0.62, -0.33], [0.6, -0.07], [-0.6, -0.07]]), 0.1), _GLASSES)
    if mouth_occluded:
        _fill(img, on_face(_ellipse(0.05, 0.55, 0.55, 0.32, 20), 0.15), _shade(skin, 0.92))
        for k in range(3):
            finger = np.array([[-0.45 + 0.3 * k, 0.42], [-0.35 + 0.3 * k, 0.72]])
            _line(img, on_face(finger, 0.17), _shade(skin, 0.7), 0.02 * px)

    landmarks = np.stack([eye_centers[0], eye_centers[1], nose_tip, on_face(left[None], 0.02)[0],
                          on_face(right[None], 0.02)[0]])
    box = np.concatenate([outline.min(axis=0), outline.max(axis=0)])
    return box, landmarks


def make_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A static, cluttered background: a colour gradient plus a few random shapes."""
    top, bottom = rng.integers(40, 220, 3), rng.integers(40, 220, 3)
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    img = np.ascontiguousarray(np.broadcast_to(top * (1 - ramp) + bottom * ramp, (height, width, 3)).astype(np.uint8))
    for _ in range(int(rng.integers(3, 8))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.5:
            w, h = int(rng.integers(10, width // 3)), int(rng.integers(10, height // 3))
            cv2.rectangle(img, (x, y), (x + w, y + h), colour, -1)
        else:
            cv2.circle(img, (x, y), int(rng.integers(5, height // 5)), colour, -1, cv2.LINE_AA)
    return img


class FrameDegrader:
    """Lighting, blur and sensor noise of one raw video's frames.

    Sensor noise comes from a few pre-drawn fields read at random offsets: drawing fresh
    Gaussian noise for every frame costs more than rendering the frame, and shifted windows
    look the same.
    """

    def __init__(self, rng: np.random.Generator, height: int, width: int, noise_std: float, n_fields: int = 4):
        margin = 24
        self._gradient = np.ascontiguousarray(
            np.broadcast_to(np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :, None], (height, width, 3))
        )
        self._noise = rng.standard_normal((n_fields, height + margin, width + margin, 3), dtype=np.float32)
        self._noise *= np.float32(noise_std)
        self._height, self._width, self._margin = height, width, margin

    def apply(
        self, img: np.ndarray, gain: float, side_light: float, blur_sigma: float, rng: np.random.Generator
    ) -> np.ndarray:
        """Lit, blurred, noisy uint8 copy of ``img``: gain times a left-right gradient, Gaussian blur, noise."""
        light = cv2.addWeighted(self._gradient, gain * side_light, self._gradient, 0.0, gain)
        out = cv2.multiply(img, light, dtype=cv2.CV_32F)
        if blur_sigma >= 0.3:
            out = cv2.GaussianBlur(out, (0, 0), blur_sigma)
        k, dy, dx = rng.integers(0, (len(self._noise), self._margin, self._margin))
        out = cv2.add(out, self._noise[k, dy : dy + self._height, dx : dx + self._width])
        return np.clip(out, 0, 255, out=out).astype(np.uint8)


def align_crop(frame: np.ndarray, pose: Pose, jitter: np.ndarray, crop_size: int) -> np.ndarray:
    """Cut an ABAW-like aligned crop: a similarity warp (roll, scale, shift) of the face region.

    Like a 2D landmark aligner it undoes roll and scale but not yaw/pitch; ``jitter``
    ``(dx, dy, dlog_scale, droll)`` models the aligner's own error.
    """
    dx, dy, dlog, droll = (float(v) for v in jitter)
    units_per_px = 2.0 * _CROP_HALF * np.exp(dlog) / crop_size
    roll = pose.roll + droll
    c, s = np.cos(roll), np.sin(roll)
    rot = np.array([[c, -s], [s, c]]) * (pose.face_height_px / 2.0)
    origin = np.array([_CROP_CENTER[0] + dx * 2 * _CROP_HALF, _CROP_CENTER[1] + dy * 2 * _CROP_HALF])
    origin = origin - (crop_size / 2.0 - 0.5) * units_per_px
    matrix = np.concatenate([rot * units_per_px, (np.asarray(pose.center_xy) + rot @ origin)[:, None]], axis=1)
    return cv2.warpAffine(
        frame, matrix, (crop_size, crop_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
    )
