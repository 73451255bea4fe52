"""Face detectors on real stills, MTCNN's TF->PyTorch weight conversion against a NumPy reference, the registry."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from affectseq.errors import ConfigError, InputError
from affectseq.faces import Detection, FaceDetector, available_detectors, create_detector
from affectseq.faces.mtcnn_nets import RNet, load_tf_weights


def _rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# MTCNN's tiny convolutions on a busy 2-core machine: one torch thread (fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector("mtcnn")


def test_registry_names_backends_and_rejects_unknown() -> None:
    assert available_detectors() == ["haar", "mtcnn"]
    with pytest.raises(ConfigError, match="haar, mtcnn"):
        create_detector("retinaface")


def test_mtcnn_finds_one_face_with_plausible_landmarks(mtcnn, clips_dir: Path) -> None:
    img = _rgb(clips_dir / "single_face.jpg")
    faces = mtcnn.detect(img)
    assert isinstance(mtcnn, FaceDetector)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.95
    x1, y1, x2, y2 = face.box
    # A head-and-shoulders portrait: the face is a sizeable part of the picture.
    assert 0.15 * img.shape[1] < x2 - x1 < 0.7 * img.shape[1]
    lm = face.landmarks
    assert lm.shape == (5, 2) and lm.dtype == np.float32
    assert np.all((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2))
    left_eye, right_eye, nose, mouth_l, mouth_r = lm
    assert left_eye[0] < nose[0] < right_eye[0]            # image-left eye first
    assert mouth_l[0] < mouth_r[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    eye_dist = np.linalg.norm(right_eye - left_eye)
    assert 0.25 * (x2 - x1) < eye_dist < 0.7 * (x2 - x1)


def test_mtcnn_finds_the_five_people(mtcnn, clips_dir: Path) -> None:
    faces = mtcnn.detect(_rgb(clips_dir / "multi_face.jpg"))
    assert len(faces) == 5
    boxes = np.array([f.box for f in faces])
    # Five different people: no two boxes overlap.
    for i in range(5):
        for j in range(i + 1, 5):
            a, b = boxes[i], boxes[j]
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


def test_mtcnn_finds_no_face_in_a_landscape(mtcnn, clips_dir: Path) -> None:
    assert mtcnn.detect(_rgb(clips_dir / "free-mountain-vector-01.jpg")) == []


def test_mtcnn_downscales_large_frames_and_reports_full_resolution_boxes(mtcnn, clips_dir: Path) -> None:
    img = _rgb(clips_dir / "single_face.jpg")
    big = cv2.resize(img, None, fx=3, fy=3, interpolation=cv2.INTER_LINEAR)  # 1716 px > max_side
    small_box = np.array(mtcnn.detect(img)[0].box)
    big_faces = mtcnn.detect(big)
    assert len(big_faces) == 1
    np.testing.assert_allclose(np.array(big_faces[0].box) / 3, small_box, atol=0.06 * (small_box[2] - small_box[0]))


def test_refine_verifies_and_refits_a_box(mtcnn, clips_dir: Path) -> None:
    img = _rgb(clips_dir / "single_face.jpg")
    face = mtcnn.detect(img)[0]
    shifted = np.array(face.box) + [8, -6, 8, -6]
    sky = (0, 0, 120, 120)
    refit, none = mtcnn.refine(img, [shifted, sky])
    assert none is None
    assert refit is not None and refit.score > 0.9
    # Re-fitted from a shifted crop, the box and landmarks stay on the face (no drift beyond the shift).
    side = face.width
    assert np.abs(np.array(refit.box) - face.box).max() < 0.06 * side
    assert np.abs(refit.landmarks - face.landmarks).max() < 0.05 * side


def test_haar_finds_the_face_without_landmarks(clips_dir: Path) -> None:
    haar = create_detector("haar")
    faces = haar.detect(_rgb(clips_dir / "single_face.jpg"))
    assert len(faces) == 1 and faces[0].landmarks is None
    mtcnn_box = np.array(create_detector("mtcnn").detect(_rgb(clips_dir / "single_face.jpg"))[0].box)
    # Calibrated to the MTCNN box convention: comparable framing for alignment.
    side = mtcnn_box[2] - mtcnn_box[0]
    np.testing.assert_allclose(faces[0].box, mtcnn_box, atol=0.15 * side)
    assert haar.detect(_rgb(clips_dir / "free-mountain-vector-01.jpg")) == []


def test_bad_frames_raise_input_error(mtcnn) -> None:
    with pytest.raises(InputError, match="uint8"):
        mtcnn.detect(np.zeros((32, 32), np.uint8))
    with pytest.raises(InputError, match="uint8"):
        mtcnn.detect(np.zeros((32, 32, 3), np.float32))
    assert mtcnn.detect(np.zeros((9, 9, 3), np.uint8)) == []       # smaller than any face: no face
    assert mtcnn.detect(np.zeros((200, 300, 3), np.uint8)) == []   # black frame


def _tf_same_pool(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """Keras MaxPooling2D(padding="same") on NHWC: pad bottom/right with -inf."""
    n, h, w, c = x.shape
    oh, ow = -(-h // s), -(-w // s)
    ph, pw = max((oh - 1) * s + k - h, 0), max((ow - 1) * s + k - w, 0)
    x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), constant_values=-np.inf)
    return _valid_pool(x, k, s)


def _valid_pool(x: np.ndarray, k: int, s: int) -> np.ndarray:
    n, h, w, c = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.full((n, oh, ow, c), -np.inf)
    for dy in range(k):
        for dx in range(k):
            out = np.maximum(out, x[:, dy:dy + s * oh:s, dx:dx + s * ow:s])
    return out


def _conv_hwio(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    kh, kw = kernel.shape[:2]
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.zeros((x.shape[0], oh, ow, kernel.shape[3]))
    for dy in range(kh):
        for dx in range(kw):
            out += np.einsum("nhwc,co->nhwo", x[:, dy:dy + oh, dx:dx + ow], kernel[dy, dx])
    return out + bias


def _prelu(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, x * alpha.reshape(-1))


def test_rnet_matches_a_numpy_reference_of_the_keras_graph() -> None:
    """Known answer for the layout conversion: HWIO kernels, 'same' pooling, Permute((2,1,3)) + Flatten."""
    w = [a.astype(np.float64) for a in load_tf_weights("rnet")]
    x = np.random.default_rng(0).uniform(-1, 1, (3, 24, 24, 3))
    h = _tf_same_pool(_prelu(_conv_hwio(x, w[0], w[1]), w[2]), 3, 2)
    h = _valid_pool(_prelu(_conv_hwio(h, w[3], w[4]), w[5]), 3, 2)
    h = _prelu(_conv_hwio(h, w[6], w[7]), w[8])
    h = h.transpose(0, 2, 1, 3).reshape(len(x), -1)
    h = _prelu(h @ w[9] + w[10], w[11])
    reg = h @ w[12] + w[13]
    logits = h @ w[14] + w[15]
    prob = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)

    net = RNet().load_tf(load_tf_weights("rnet")).eval()
    with torch.inference_mode():
        t_reg, t_prob = net(torch.from_numpy(x.transpose(0, 3, 1, 2)).float())
    np.testing.assert_allclose(t_reg.numpy(), reg, atol=1e-4)
    np.testing.assert_allclose(t_prob.numpy(), prob, atol=1e-5)


def test_detection_geometry_helpers() -> None:
    det = Detection((10.0, 20.0, 50.0, 100.0), 0.9)
    assert (det.width, det.height, det.area, det.center) == (40.0, 80.0, 3200.0, (30.0, 60.0))
