"""Bounded memory at any resolution: large frames are detected/tracked on a working copy, boxes mapped back.

The same face image upscaled 4x (2288x2248, above ``WORK_MAX_SIDE``) must give 4x the
boxes and landmarks, while the detector never sees more than ``WORK_MAX_SIDE`` pixels;
``predict`` keeps only working copies in its queues and reports full-resolution boxes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from affectseq.faces import WORK_MAX_SIDE, Detection, FaceTracker, create_detector, working_frame
from affectseq.faces.working import detection_to_full

UPSCALE = 4


# MTCNN's tiny convolutions on a busy 2-core machine: one torch thread (fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class SpyDetector:
    """Wraps a detector and records the frame shapes it is handed (detect and refine)."""

    def __init__(self, inner):
        self.inner, self.shapes = inner, []
        self.name, self.has_landmarks = inner.name, inner.has_landmarks

    def detect(self, rgb):
        self.shapes.append(rgb.shape)
        return self.inner.detect(rgb)

    def detect_batch(self, frames):
        return [self.detect(f) for f in frames]

    def refine(self, rgb, boxes, threshold=0.6):
        self.shapes.append(rgb.shape)
        return self.inner.refine(rgb, boxes, threshold=threshold)


def _track(image: np.ndarray, frames: int = 3) -> tuple[list[Detection], SpyDetector]:
    spy = SpyDetector(create_detector("mtcnn"))
    tracker = FaceTracker(spy, detect_every=2, refine_every=1)
    found = [tracker.update(i, image) for i in range(frames)]
    return [faces[0].detection for faces in found], spy


def test_upscaled_face_gives_upscaled_boxes_and_the_detector_sees_a_bounded_frame(clips_dir: Path) -> None:
    small = cv2.cvtColor(cv2.imread(str(clips_dir / "single_face.jpg")), cv2.COLOR_BGR2RGB)
    large = cv2.resize(small, (small.shape[1] * UPSCALE, small.shape[0] * UPSCALE), interpolation=cv2.INTER_CUBIC)
    assert max(large.shape[:2]) > WORK_MAX_SIDE
    base, _ = _track(small)
    big, spy = _track(large)
    # Frames 0 and 2 are detections, frame 1 a tracked (re-fitted) frame: both paths map back.
    assert len(spy.shapes) >= 3 and max(max(s[:2]) for s in spy.shapes) <= WORK_MAX_SIDE
    for a, b in zip(base, big):
        side = a.width
        np.testing.assert_allclose(np.asarray(b.box) / UPSCALE, a.box, atol=0.06 * side)
        np.testing.assert_allclose(b.landmarks / UPSCALE, a.landmarks, atol=0.06 * side)
        assert b.width == pytest.approx(UPSCALE * a.width, rel=0.08)


def test_working_frame_keeps_small_frames_and_maps_boxes_back() -> None:
    frame = np.zeros((1080, 1920, 3), np.uint8)
    same, scale = working_frame(frame)
    assert same is frame and scale == 1.0  # 1080p is never resized
    frame16k = np.zeros((8640, 15360, 3), np.uint8)
    work, scale = working_frame(frame16k)
    assert work.shape == (1080, 1920, 3) and scale == pytest.approx(1 / 8)
    det = Detection((100.0, 50.0, 200.0, 180.0), 0.9, np.full((5, 2), 10.0, np.float32))
    full = detection_to_full(det, scale)
    assert full.box == pytest.approx((800.0, 400.0, 1600.0, 1440.0)) and full.landmarks[0, 0] == pytest.approx(80.0)


class ProportionalFaces:
    """A face source reporting a box at fixed fractions of whatever frame it gets; records the shapes."""

    def __init__(self):
        self.shapes = []

    def update(self, frame_idx, rgb):
        self.shapes.append(rgb.shape)
        h, w = rgb.shape[:2]
        return [(0, Detection((0.25 * w, 0.25 * h, 0.5 * w, 0.75 * h), 0.9, None))]


def test_predict_queues_working_copies_and_reports_full_resolution_boxes(tmp_path: Path) -> None:
    from test_predict_helpers import box_crops, brightness_bundle, write_video

    from affectseq.predict.pipeline import PredictOptions, predict_video_table

    width, height = 2560, 1440
    frames = [np.full((height, width, 3), 40 * i, np.uint8) for i in range(4)]
    video = write_video(tmp_path / "qhd.mp4", frames)
    faces = ProportionalFaces()
    pred = predict_video_table(video, brightness_bundle(), PredictOptions(progress=False), face_source=faces,
                               aligner=box_crops)
    assert faces.shapes and all(max(s[:2]) <= WORK_MAX_SIDE for s in faces.shapes)
    rows = pred.table[pred.table.face_id.notna()]
    assert len(rows) == 4
    np.testing.assert_allclose(rows[["x1", "y1", "x2", "y2"]].to_numpy(dtype=float)[0],
                               [0.25 * width, 0.25 * height, 0.5 * width, 0.75 * height], rtol=1e-3)
