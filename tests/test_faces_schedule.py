"""Detection schedule and planning ahead: a tracker fed plans made ahead gives exactly what it gives alone."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from affectseq.faces import FaceTracker, create_detector
from affectseq.faces.schedule import DetectionSchedule, FramePlan
from affectseq.faces.tracking import _assign
from affectseq.io.video import VideoReader


# MTCNN's tiny convolutions on a busy 2-core machine: one torch thread (fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class CountingDetector:
    """Wraps a detector and counts full detections (refine passes through)."""

    def __init__(self, inner):
        self.inner = inner
        self.detect_calls = 0

    def detect(self, rgb):
        self.detect_calls += 1
        return self.inner.detect(rgb)

    def refine(self, *args, **kwargs):
        return self.inner.refine(*args, **kwargs)


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector("mtcnn")


def _frames(path: Path, stop: int) -> list[np.ndarray]:
    with VideoReader(path) as reader:
        return [f.rgb for f in islice(reader, stop)]


def _rows(tracked_per_frame) -> list[tuple]:
    return [(i, t.face_id, t.detected, t.detection.box, t.detection.score,
             None if t.detection.landmarks is None else t.detection.landmarks.tobytes())
            for i, tracked in enumerate(tracked_per_frame) for t in tracked]


@pytest.mark.parametrize("clip,n_frames", [("multi_face_pan.mp4", 20), ("face_noface.mov", 90),
                                           ("rotated90_single_face.mp4", 20)])
def test_plans_made_ahead_give_identical_tracks(clips_dir: Path, mtcnn, clip: str, n_frames: int) -> None:
    frames = _frames(clips_dir / clip, n_frames)
    alone = FaceTracker(mtcnn, detect_every=4)
    expected = [alone.update(i, rgb) for i, rgb in enumerate(frames)]

    counting = CountingDetector(mtcnn)
    tracker = FaceTracker(counting, detect_every=4)
    planner = tracker.planner()
    # Plan a few frames ahead of tracking, as predict's worker thread does.
    ahead = 3
    plans = [planner.plan(rgb) for rgb in frames[:ahead]]
    got = []
    for i, rgb in enumerate(frames):
        if i + ahead < len(frames):
            plans.append(planner.plan(frames[i + ahead]))
        got.append(tracker.update(i, rgb, plans[i]))
    assert _rows(got) == _rows(expected)
    assert tracker.n_detections == alone.n_detections and tracker.n_cuts == alone.n_cuts
    assert any(expected)
    if clip == "multi_face_pan.mp4":  # faces all along: every full detection was made by the planner
        assert counting.detect_calls == sum(p.detect for p in plans) == alone.n_detections


def test_a_plan_for_another_orientation_is_not_used(clips_dir: Path, mtcnn) -> None:
    rgb = _frames(clips_dir / "single_face.mp4", 1)[0]
    counting = CountingDetector(mtcnn)
    tracker = FaceTracker(counting, rotations=(0,))
    # Detections "made" for the frame turned 90 degrees (here: none) must not replace the upright ones.
    tracked = tracker.update(0, rgb, FramePlan(cut=False, detect=True, detections={1: []}))
    assert counting.detect_calls == 1 and len(tracked) == 1


def test_schedule_detects_first_every_k_and_at_cuts() -> None:
    dark, bright = np.zeros((36, 64, 3), np.uint8), np.full((36, 64, 3), 200, np.uint8)
    schedule = DetectionSchedule(detect_every=3, cut_threshold=20.0)
    frames = [dark] * 5 + [bright] * 4
    steps = [schedule.step(f) for f in frames]
    assert [d for _, d in steps] == [True, False, False, True, False, True, False, False, True]
    assert [c for c, _ in steps] == [False] * 5 + [True, False, False, False]


def test_assign_matches_scipy_hungarian() -> None:
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(0)
    shapes = [(1, 1), (1, 4), (4, 1), (3, 3), (2, 5), (5, 2)]
    for shape in shapes:
        for _ in range(20):
            iou = rng.random(shape) * (rng.random(shape) > 0.4)
            rows, cols = _assign(iou)
            ref_rows, ref_cols = linear_sum_assignment(-iou)
            assert rows.tolist() == ref_rows.tolist() and cols.tolist() == ref_cols.tolist()


def test_planner_detections_wait_for_the_trackers_own(clips_dir: Path) -> None:
    """One detector call at a time: a backend (OpenCV's cascade) may not be safe from two threads."""
    import threading

    class Flat:
        def detect(self, rgb):
            return []

    tracker = FaceTracker(Flat(), detect_every=1)
    planner = tracker.planner()
    done = threading.Event()
    frame = np.zeros((36, 64, 3), np.uint8)
    with tracker._detect_lock:  # as while the tracker searches another orientation itself
        worker = threading.Thread(target=lambda: (planner.plan(frame), done.set()))
        worker.start()
        assert not done.wait(0.3)
    assert done.wait(5.0)
    worker.join()
