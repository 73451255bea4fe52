"""FaceTracker on real clips (stable ids, letting go, main face, sideways faces) and on a scripted detector."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest

from affectseq.faces import Detection, FaceTracker, align_face, create_detector
from affectseq.io.video import VideoReader


# MTCNN's tiny convolutions on a busy 2-core machine: one torch thread (fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector("mtcnn")


def _frames(path: Path, first: int, stop: int) -> list[tuple[int, np.ndarray]]:
    with VideoReader(path) as reader:
        return [(f.frame_idx, f.rgb) for f in islice(reader, first, stop)]


@pytest.fixture(scope="module")
def pan_frames(clips_dir: Path):
    return _frames(clips_dir / "multi_face_pan.mp4", 0, 12)


def _centre(det: Detection) -> np.ndarray:
    return np.array(det.center)


def test_five_faces_keep_their_ids_through_a_pan(mtcnn, pan_frames) -> None:
    tracker = FaceTracker(mtcnn, detect_every=8)
    history = [tracker.update(i, rgb) for i, rgb in pan_frames]
    assert [len(faces) for faces in history] == [5] * len(pan_frames)
    assert all({f.face_id for f in faces} == {0, 1, 2, 3, 4} for faces in history)
    assert [faces[0].detected for faces in history] == [i % 8 == 0 for i in range(len(pan_frames))]
    for before, after in zip(history, history[1:]):
        prev = {f.face_id: _centre(f.detection) for f in before}
        for face in after:
            # The pan moves faces a few pixels per frame; a swapped id would jump ~100 px.
            assert np.linalg.norm(_centre(face.detection) - prev[face.face_id]) < 12
    # Tracked (not detected) frames still carry fresh landmarks for alignment.
    assert all(f.detection.landmarks is not None for f in history[3])


def test_main_face_only_reports_the_largest_face(mtcnn, pan_frames) -> None:
    largest = max(mtcnn.detect(pan_frames[0][1]), key=lambda d: d.area)
    tracker = FaceTracker(mtcnn, detect_every=8, main_face_only=True)
    history = [tracker.update(i, rgb) for i, rgb in pan_frames[:6]]
    assert all(len(faces) == 1 for faces in history)
    assert len({faces[0].face_id for faces in history}) == 1
    assert np.linalg.norm(_centre(history[0][0].detection) - _centre(largest)) < 5


@pytest.mark.parametrize(("cut_threshold", "refine_every", "first"), [(None, 1, 67), (20.0, 2, 67), (None, 2, 65)])
def test_tracker_lets_go_when_the_face_disappears(mtcnn, clips_dir: Path, cut_threshold, refine_every, first) -> None:
    # face_noface.mov: a face in frames 0-71, a black frame at 72, sky after. With detect_every=8
    # from frame 65 or 67, frame 72 is a tracking frame: only verification or the cut test drops it.
    frames = _frames(clips_dir / "face_noface.mov", first, 80)
    tracker = FaceTracker(mtcnn, detect_every=8, cut_threshold=cut_threshold, refine_every=refine_every)
    counts = {i: len(tracker.update(i, rgb)) for i, rgb in frames}
    assert all(counts[i] == 1 for i in range(first, 72)), counts
    # Verified every frame, or a cut detected: gone at once. Verified every other frame and
    # no cut test: at most one frame late.
    gone = 72 if (refine_every == 1 or cut_threshold is not None) else 73
    assert all(counts[i] == 0 for i in range(gone, 80)), counts


def test_sideways_face_is_found_and_aligned_upright(mtcnn, clips_dir: Path) -> None:
    # The reader hands upright frames; this clip's display rotation makes its face lie on its side.
    frames = _frames(clips_dir / "rotated90_single_face.mp4", 0, 10)
    assert frames[0][1].shape[:2] == (640, 360)
    tracker = FaceTracker(mtcnn, detect_every=8)
    history = [tracker.update(i, rgb) for i, rgb in frames]
    assert [len(faces) for faces in history] == [1] * len(frames)
    marks = history[5][0].detection.landmarks
    # Head towards the image's left: the eyes are left of the mouth, not above it.
    assert marks[:2, 0].mean() + 40 < marks[3:, 0].mean()
    aligned = align_face(frames[5][1], history[5][0].detection)
    canvas = cv2.copyMakeBorder(cv2.resize(aligned, (224, 224)), 40, 40, 40, 40, cv2.BORDER_CONSTANT)
    again = mtcnn.detect(canvas)
    assert len(again) == 1 and again[0].score > 0.98
    upright = again[0].landmarks
    assert upright[:2, 1].max() < upright[2, 1] < upright[3:, 1].min()


class ScriptedDetector:
    """Reads the frame index from pixel (0, 0) and returns scripted boxes; no ``refine`` (like Haar)."""

    name = "scripted"
    has_landmarks = False

    def __init__(self, script):
        self.script = script
        self.calls: list[int] = []

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        frame_idx = int(rgb[0, 0, 0])
        self.calls.append(frame_idx)
        return [Detection(box, 0.99, None) for box in self.script(frame_idx)]

    def detect_batch(self, frames):
        return [self.detect(f) for f in frames]


def _face_a(i: int) -> tuple[float, float, float, float]:
    return (10.0 + 2 * i, 10.0, 60.0 + 2 * i, 70.0)


FACE_B = (200.0, 50.0, 260.0, 120.0)


def _script(i: int):
    boxes = [_face_a(i)]
    if not 10 <= i <= 13:
        boxes.append(FACE_B)
    return boxes


def _run(detector, n_frames: int, **kw) -> list[dict[int, tuple]]:
    tracker = FaceTracker(detector, detect_every=2, cut_threshold=None, rotations=(0,), **kw)
    frame = np.zeros((240, 320, 3), np.uint8)
    out = []
    for i in range(n_frames):
        frame[0, 0, 0] = i
        out.append({t.face_id: t.detection.box for t in tracker.update(i, frame)})
    return out


def test_scripted_tracks_move_end_and_come_back_with_their_id() -> None:
    detector = ScriptedDetector(_script)
    history = _run(detector, 20)
    assert detector.calls == list(range(0, 20, 2))
    for i, faces in enumerate(history):
        # Exact on detection frames; carried by the (damped) velocity in between, lagging <= 1 frame of motion.
        np.testing.assert_allclose(faces[0], _face_a(i), atol=1e-6 if i % 2 == 0 else 2.0 + 1e-6)
    assert abs(history[9][0][0] - _face_a(9)[0]) < 1.0
    presence = [1 in faces for faces in history]
    # B is gone on detection frame 10, stays gone on tracking frame 11, returns on detection frame 14.
    assert presence == [True] * 10 + [False] * 4 + [True] * 6
    assert all(set(faces) <= {0, 1} for faces in history)


def test_scripted_lost_face_gets_a_new_id_without_reid() -> None:
    history = _run(ScriptedDetector(_script), 20, reid_frames=0)
    assert set(history[-1]) == {0, 2}


def test_reset_forgets_ids_and_bad_settings_fail() -> None:
    detector = ScriptedDetector(lambda i: [FACE_B])
    tracker = FaceTracker(detector, detect_every=3, cut_threshold=None, rotations=(0,))
    frame = np.zeros((240, 320, 3), np.uint8)
    assert [t.face_id for t in tracker.update(0, frame)] == [0]
    tracker.reset()
    tracker.update(0, frame)
    assert [t.face_id for t in tracker.update(1, frame)] == [0]
    with pytest.raises(ValueError):
        FaceTracker(detector, detect_every=0)
    with pytest.raises(ValueError):
        FaceTracker(detector, refine_every=0)


def test_carried_landmarks_follow_the_box() -> None:
    class WithLandmarks(ScriptedDetector):
        def detect(self, rgb):
            return [Detection(d.box, d.score, np.array([[d.box[0] + 10, d.box[1] + 20]] * 5, np.float32))
                    for d in super().detect(rgb)]

    tracker = FaceTracker(WithLandmarks(lambda i: [_face_a(i)]), detect_every=4, cut_threshold=None, rotations=(0,))
    frame = np.zeros((240, 320, 3), np.uint8)
    for i in range(7):
        frame[0, 0, 0] = i
        (face,) = tracker.update(i, frame)
        np.testing.assert_allclose(face.detection.landmarks[0], np.array(face.detection.box[:2]) + [10, 20], atol=1e-3)
