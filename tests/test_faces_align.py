"""Alignment: known-answer similarity warps (landmark and box paths), quarter-turn geometry, a real face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from affectseq.faces import TEMPLATE_112, Detection, align_face, align_faces
from affectseq.faces.align import TEMPLATE_BOX_112, face_transform, umeyama_similarity
from affectseq.faces.orientation import (
    box_to_rotated,
    detection_from_rotated,
    points_from_rotated,
    points_to_rotated,
    rotate_frame,
)


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _smooth_texture(size: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB image: interpolation barely changes it, misplacement does."""
    noise = np.random.default_rng(seed).uniform(0, 255, (size // 8, size // 8, 3)).astype(np.float32)
    return np.clip(cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def test_umeyama_recovers_a_known_similarity() -> None:
    truth = _similarity(23.0, 1.7, -40.0, 12.5)
    src = np.random.default_rng(1).uniform(0, 200, (7, 2))
    np.testing.assert_allclose(umeyama_similarity(src, _apply(truth, src)), truth, atol=1e-9)
    with pytest.raises(ValueError):
        umeyama_similarity(np.ones((5, 2)), TEMPLATE_112)


@pytest.mark.parametrize("scale", [0.9, 3.0])  # 3.0: large face, the anti-aliased shrink path
def test_landmark_alignment_undoes_a_known_similarity(scale: float) -> None:
    face = _smooth_texture(112)
    # Place the "face" (a 112x112 template-frame picture) into a bigger frame with a similarity A.
    to_frame = _similarity(-17.0, scale, 150.0, 90.0)
    frame = cv2.warpAffine(face, to_frame, (700, 600), flags=cv2.INTER_CUBIC)
    landmarks = _apply(to_frame, TEMPLATE_112).astype(np.float32)
    det = Detection((0.0, 0.0, 1.0, 1.0), 1.0, landmarks)   # box ignored when landmarks exist

    np.testing.assert_allclose(face_transform(det), cv2.invertAffineTransform(to_frame), atol=1e-4)
    aligned = align_face(frame, det)
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8
    inner = (slice(20, 92), slice(20, 92))   # away from the black border a rotation brings in
    err = np.abs(aligned[inner].astype(float) - face[inner].astype(float)).mean()
    assert err < 4.0, err
    # A wrong answer (e.g. unrotated) is far off: the check can fail.
    assert np.abs(np.rot90(aligned)[inner].astype(float) - face[inner].astype(float)).mean() > 4 * err


def test_box_only_alignment_matches_the_template_box() -> None:
    face = _smooth_texture(112, seed=3)
    to_frame = _similarity(0.0, 2.0, 60.0, 40.0)
    frame = cv2.warpAffine(face, to_frame, (400, 320), flags=cv2.INTER_CUBIC)
    corners = _apply(to_frame, np.array(TEMPLATE_BOX_112).reshape(2, 2)).reshape(-1)
    aligned = align_face(frame, Detection(tuple(corners), 0.9, None), size=112)
    inner = (slice(10, 100), slice(10, 100))
    assert np.abs(aligned[inner].astype(float) - face[inner].astype(float)).mean() < 4.0


def test_align_size_and_batch() -> None:
    frame = _smooth_texture(256)
    det = Detection((50.0, 50.0, 150.0, 170.0), 0.9, None)
    assert align_face(frame, det, size=224).shape == (224, 224, 3)
    assert align_faces(frame, [det, det]).shape == (2, 112, 112, 3)
    assert align_faces(frame, []).shape == (0, 112, 112, 3)


def test_real_face_aligns_onto_the_template(clips_dir: Path) -> None:
    from affectseq.faces import create_detector

    rgb = cv2.cvtColor(cv2.imread(str(clips_dir / "single_face.jpg")), cv2.COLOR_BGR2RGB)
    det = create_detector("mtcnn").detect(rgb)[0]
    matrix = face_transform(det)
    moved = _apply(matrix, det.landmarks.astype(np.float64))
    # A real face is not exactly the template shape, but a frontal one is close to it.
    assert np.abs(moved - TEMPLATE_112).max() < 6.0
    aligned = align_face(rgb, det)
    # The crop shows skin where the template's nose is, not the black border.
    assert aligned[60:80, 45:65].mean() > 60


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_quarter_turn_mapping_matches_np_rot90(turns: int) -> None:
    h, w = 30, 50
    frame = np.zeros((h, w, 3), np.uint8)
    x, y = 7, 21
    frame[y, x] = 255
    rotated = rotate_frame(frame, turns)
    ry, rx = np.argwhere(rotated[:, :, 0] == 255)[0]
    centre = points_to_rotated(np.array([[x + 0.5, y + 0.5]]), turns, (h, w))[0]
    np.testing.assert_allclose(centre, [rx + 0.5, ry + 0.5])
    np.testing.assert_allclose(points_from_rotated(centre[None], turns, (h, w))[0], [x + 0.5, y + 0.5])
    box = (5.0, 10.0, 20.0, 28.0)
    det = Detection(box_to_rotated(box, turns, (h, w)), 0.9, None)
    np.testing.assert_allclose(detection_from_rotated(det, turns, (h, w)).box, box)
