"""preprocess_faces: deterministic, normalised per the spec, gray/colour and framing handled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectseq.features import preprocess
from affectseq.features.encoders import EncoderSpec
from affectseq.features.preprocess import preprocess_faces

RGB_SPEC = EncoderSpec(name="t", input_size=32, in_chans=3, grayscale=False, mean=(0.5, 0.4, 0.3),
                       std=(0.2, 0.25, 0.5), feature_dim=8)
GRAY3_SPEC = EncoderSpec(name="t", input_size=24, in_chans=3, grayscale=True, mean=(0.485, 0.456, 0.406),
                         std=(0.229, 0.224, 0.225), feature_dim=8, framing="fer2013")


def test_constant_image_is_normalised_exactly() -> None:
    faces = np.zeros((2, 50, 40, 3), np.uint8)
    faces[..., 0], faces[..., 1], faces[..., 2] = 255, 51, 0
    x = preprocess_faces(RGB_SPEC, faces)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    expected = [(1.0 - 0.5) / 0.2, (0.2 - 0.4) / 0.25, (0.0 - 0.3) / 0.5]
    for c in range(3):
        assert torch.allclose(x[:, c], torch.full_like(x[:, c], expected[c]), atol=1e-5)


def test_grayscale_uses_luma_and_repeats_channels() -> None:
    faces = np.zeros((1, 48, 48, 3), np.uint8)
    faces[..., 1] = 200  # pure green -> luma 0.587 * 200
    x = preprocess_faces(GRAY3_SPEC, faces)
    luma = 0.587 * 200 / 255
    for c in range(3):
        value = (luma - GRAY3_SPEC.mean[c]) / GRAY3_SPEC.std[c]
        assert torch.allclose(x[0, c], torch.full((24, 24), value), atol=1e-4)


def test_deterministic_and_tensor_input_equals_array_input() -> None:
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    a = preprocess_faces(RGB_SPEC, faces)
    b = preprocess_faces(RGB_SPEC, torch.from_numpy(faces))
    assert torch.equal(a, b)
    assert torch.equal(a, preprocess_faces(RGB_SPEC, faces))
    assert torch.equal(preprocess_faces(RGB_SPEC, faces[0]), a[:1])  # a single face is N=1


def test_framing_conversion_crops_before_resizing(monkeypatch) -> None:
    monkeypatch.setitem(preprocess.FRAMING_CROPS, ("abaw112", "fer2013"), (0.25, 0.25, 0.75, 0.75))
    faces = np.zeros((1, 100, 100, 3), np.uint8)
    faces[:, 25:75, 25:75] = 255  # white centre, black border
    cropped = preprocess_faces(GRAY3_SPEC, faces, framing="abaw112")
    whole = preprocess_faces(GRAY3_SPEC, faces)
    white = (1.0 - GRAY3_SPEC.mean[0]) / GRAY3_SPEC.std[0]
    assert torch.allclose(cropped[0, 0], torch.full((24, 24), white), atol=1e-4)
    assert whole[0, 0].min() < white - 1  # the uncropped face still shows the border
    assert torch.equal(preprocess_faces(GRAY3_SPEC, faces, framing="fer2013"), whole)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="uint8"):
        preprocess_faces(RGB_SPEC, np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError):
        preprocess_faces(RGB_SPEC, np.zeros((1, 8, 8), np.uint8))
