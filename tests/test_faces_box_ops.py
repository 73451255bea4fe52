"""affectseq.faces.box_ops against torchvision.ops (known answers), and MTCNN with either.

box_ops replaces torchvision's nms/roi_align in the detector so that ``predict`` does not
import torchvision (seconds of start-up); torchvision stays installed for training, so it
serves here as the reference implementation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.ops as tv

from affectseq.faces import box_ops, mtcnn
from affectseq.io.video import VideoReader


def _nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """box_ops.nms (NumPy) on torch tensors, for comparison with torchvision's."""
    return torch.from_numpy(box_ops.nms(boxes.numpy(), scores.numpy(), threshold))


def _roi_align(image: torch.Tensor, rois: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    return torch.from_numpy(box_ops.roi_align(image.numpy(), rois.numpy(), *args, **kwargs))


# MTCNN's tiny convolutions on a busy 2-core machine: one torch thread (fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------------ nms
def _random_boxes(gen: torch.Generator, n: int, span: float = 100.0, max_side: float = 40.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=gen) * span
    wh = torch.rand(n, 2, generator=gen) ** 2 * max_side
    return torch.cat([xy, xy + wh], dim=1)


def _nms_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(12)
    cases = []
    for n in (1, 2, 7, 60, 300):
        cases.append((f"random-{n}", _random_boxes(gen, n), torch.rand(n, generator=gen)))
    # Few distinct scores: the tie order (stable, lower index first) decides what survives.
    boxes = _random_boxes(gen, 200, span=30.0)
    cases.append(("score-ties", boxes, (torch.rand(200, generator=gen) * 4).round()))
    # Identical boxes, some with equal scores; zero-area boxes (IoU 0/0 = NaN suppresses nothing).
    same = _random_boxes(gen, 1, span=50.0).repeat(40, 1)
    same[::5] = same[0] + 3.0
    cases.append(("identical", same, (torch.rand(40, generator=gen) * 3).round()))
    flat = _random_boxes(gen, 50, span=20.0)
    flat[::2, 2] = flat[::2, 0]                  # zero width
    flat[1::4] = flat[1]                          # identical, some of them zero-area
    cases.append(("zero-area", flat, torch.rand(50, generator=gen)))
    tiny = _random_boxes(gen, 100, span=3.0, max_side=1e-3)
    cases.append(("tiny", tiny, torch.rand(100, generator=gen)))
    # More boxes than the all-pairs path takes: the row-by-row path.
    n = box_ops._NMS_MATRIX_MAX + 300
    cases.append(("row-by-row", _random_boxes(gen, n, span=200.0), (torch.rand(n, generator=gen) * 50).round()))
    cases.append(("float64", _random_boxes(gen, 80).double(), torch.rand(80, generator=gen).double()))
    return cases


@pytest.mark.parametrize("name,boxes,scores", _nms_cases(), ids=[c[0] for c in _nms_cases()])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_matches_torchvision(name: str, boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> None:
    got = _nms(boxes, scores, threshold)
    assert got.dtype == torch.int64
    assert torch.equal(got, tv.nms(boxes, scores, threshold))


def test_nms_threshold_is_compared_in_double_like_torchvision() -> None:
    # IoU exactly 0.5 in float32 against thresholds just below/above 0.5 as doubles.
    boxes = torch.tensor([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    scores = torch.tensor([1.0, 0.5])
    for thr in (0.5, 0.5 - 1e-12, 0.5 + 1e-12, 0.49999999):
        assert torch.equal(_nms(boxes, scores, thr), tv.nms(boxes, scores, thr)), thr


def test_nms_of_nothing_is_empty() -> None:
    got = _nms(torch.zeros((0, 4)), torch.zeros(0), 0.5)
    assert got.shape == (0,) and got.dtype == torch.int64


# ------------------------------------------------------------------ roi_align
def _random_rois(gen: torch.Generator, n: int, height: int, width: int, n_images: int) -> torch.Tensor:
    """Boxes inside, partly outside and wholly outside the image, from 0.001 to 60 px a side."""
    x1 = torch.rand(n, generator=gen) * (width + 30) - 15
    y1 = torch.rand(n, generator=gen) * (height + 30) - 15
    w = torch.rand(n, generator=gen) ** 3 * 60 + 1e-3
    h = torch.rand(n, generator=gen) ** 3 * 60 + 1e-3
    idx = torch.randint(0, n_images, (n,), generator=gen).float()
    return torch.stack([idx, x1, y1, x1 + w, y1 + h], dim=1)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [1, 2, 3])
@pytest.mark.parametrize("output_size", [24, 48, (5, 7)])
@pytest.mark.parametrize("shape", [(2, 3, 37, 53), (1, 3, 61, 40), (2, 1, 1, 1), (1, 2, 5, 1)])
def test_roi_align_matches_torchvision(shape, output_size, sampling_ratio: int, aligned: bool) -> None:
    gen = torch.Generator().manual_seed(sum(shape) + sampling_ratio)
    image = torch.randn(shape, generator=gen)
    rois = _random_rois(gen, 120, shape[2], shape[3], shape[0])
    for scale in (1.0, 0.5):
        want = tv.roi_align(image, rois, output_size, scale, sampling_ratio, aligned)
        got = _roi_align(image, rois, output_size, scale, sampling_ratio, aligned)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_roi_align_edge_samples_follow_torchvision() -> None:
    """Samples exactly at -1 and at H/W count (clamped); a hair further out they are zero."""
    gen = torch.Generator().manual_seed(3)
    image = torch.rand((1, 3, 6, 9), generator=gen) + 1.0   # no zeros, so a zeroed sample shows
    # Unaligned, one bin of one sample, 1-px boxes: the sample is at x1 + 0.5, y1 + 0.5.
    rois = []
    for x in (-1.5, -1.5 - 1e-4, -0.5, 8.5, 9.0 - 0.5, 9.0 - 0.5 + 1e-4, 3.25):
        for y in (-1.5, -1.5 - 1e-4, 5.5 - 0.5, 6.0 - 0.5, 6.0 - 0.5 + 1e-4, 2.75):
            rois.append([0.0, x, y, x + 1.0, y + 1.0])
    rois_t = torch.tensor(rois)
    want = tv.roi_align(image, rois_t, 1, 1.0, 1, False)
    got = _roi_align(image, rois_t, 1, 1.0, 1, False)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert (want == 0).any() and (want != 0).any()           # both rules are exercised


def test_roi_align_on_a_real_frame_as_the_detector_calls_it(clips_dir: Path) -> None:
    with VideoReader(clips_dir / "multi_face_pan.mp4") as reader:
        rgb = next(iter(reader)).rgb
    image = torch.from_numpy(mtcnn._normalize(rgb))          # channels_last, like R-Net's input
    gen = torch.Generator().manual_seed(5)
    rois = _random_rois(gen, 150, image.shape[2], image.shape[3], 1)
    rois[:, 3:] = rois[:, 1:3] + (rois[:, 3:] - rois[:, 1:3]) * 5   # up to 300 px, like big faces
    for size in (24, 48):
        want = tv.roi_align(image, rois, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
        got = _roi_align(image, rois, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_roi_align_of_nothing_is_empty() -> None:
    got = _roi_align(torch.zeros((1, 3, 10, 10)), torch.zeros((0, 5)), 24)
    assert got.shape == (0, 3, 24, 24)


# ------------------------------------------------------------ MTCNN, both ops
@pytest.mark.parametrize("clip", ["single_face.mp4", "multi_face_pan.mp4", "face_noface.mov"])
@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_mtcnn_detections_are_the_same_with_torchvision_ops(clip: str, backend: str, clips_dir: Path,
                                                            monkeypatch) -> None:
    with VideoReader(clips_dir / clip, stride=4) as reader:
        frames = [f.rgb for f in reader]
    detector = mtcnn.MTCNNDetector(backend=backend)
    ours = [detector.detect(f) for f in frames]
    monkeypatch.setattr(mtcnn, "nms", lambda b, s, t: tv.nms(torch.from_numpy(b), torch.from_numpy(s), t).numpy())
    monkeypatch.setattr(mtcnn, "roi_align", lambda image, rois, *a, **k: tv.roi_align(
        torch.from_numpy(image), torch.from_numpy(rois), *a, **k).numpy())
    reference = [detector.detect(f) for f in frames]
    assert sum(map(len, reference)) > 0
    for got, want in zip(ours, reference):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            # R-Net's inputs differ by float32 rounding (~1e-7); through the box
            # regressions that is a float32 ulp or two of pixel coordinates up to ~960.
            np.testing.assert_allclose(a.box, b.box, rtol=2e-6, atol=1e-4)
            np.testing.assert_allclose(a.landmarks, b.landmarks, rtol=2e-6, atol=1e-4)
            assert a.score == pytest.approx(b.score, abs=1e-6)


def test_importing_mtcnn_does_not_import_torchvision() -> None:
    code = "import sys, affectseq.faces.mtcnn; print('torchvision' in sys.modules, 'torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
