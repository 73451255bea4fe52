"""When :class:`~affectseq.faces.tracking.FaceTracker` runs a full detection -- decided from the frames alone.

The tracker detects on the first frame, on every ``detect_every``-th frame after
its last detection, and on the first frame of a new shot (a scene cut: the mean
absolute change of a 32x18 grey thumbnail). None of this depends on what the
tracker found, and a detector's output depends only on the frame, so a
:class:`FramePlanner` can follow the same schedule *ahead* of the tracker, in
another thread, and run the full detections there. Given each frame's
:class:`FramePlan`, the tracker then only re-fits, matches and keeps ids. The
results are identical to the tracker planning for itself (checked by
``tests/test_faces_schedule.py``); only the work moves to another core.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, ContextManager

import cv2
import numpy as np

from affectseq.faces.detector import Detection, FaceDetector, check_rgb
from affectseq.faces.orientation import rotate_frame
from affectseq.faces.settings import check_face_setting
from affectseq.faces.working import WORK_MAX_SIDE, working_frame

_THUMB_SIZE = (32, 18)


@dataclass(frozen=True)
class FramePlan:
    """One frame's schedule decision and the full detections made ahead for it.

    ``detections`` maps quarter turns (the frame orientation the detector saw) to
    the detector's raw output on the (working copy of the) frame rotated by that much;
    the tracker uses an entry when it detects in that orientation and runs the detector
    itself otherwise.
    """

    cut: bool
    detect: bool
    detections: dict[int, list[Detection]] = field(default_factory=dict)
    # The working copy the plan was made on and its scale (affectseq.faces.working), so the
    # tracker does not shrink a large frame a second time; None when the frame already fit.
    work: np.ndarray | None = field(default=None, repr=False, compare=False)
    scale: float = 1.0


class DetectionSchedule:
    """Frames that get a full detection: the first, every ``detect_every``-th since the last, and scene cuts.

    ``cut_threshold``: mean absolute grey-level change (0-255) of a thumbnail taken
    as a scene cut; ``None`` disables the test.
    """

    def __init__(self, detect_every: int, cut_threshold: float | None) -> None:
        check_face_setting("detect_every", detect_every)
        self.detect_every = int(detect_every)
        self.cut_threshold = cut_threshold
        self.reset()

    def reset(self) -> None:
        """Start over (a new video): the next frame is detected."""
        self._since_detect = self.detect_every
        self._thumb: np.ndarray | None = None

    def step(self, rgb: np.ndarray) -> tuple[bool, bool]:
        """``(cut, detect)`` for the next frame of the video (frames must come in order)."""
        cut = self._scene_cut(rgb)
        detect = cut or self._since_detect >= self.detect_every
        self._since_detect = 1 if detect else self._since_detect + 1
        return cut, detect

    @property
    def since_detect(self) -> int:
        """Frames since the last detection, counting the current one (1 on a detection frame)."""
        return self._since_detect

    def _scene_cut(self, rgb: np.ndarray) -> bool:
        if self.cut_threshold is None:
            return False
        # Every 4th pixel is plenty for a 32x18 average and makes the thumbnail ~10x cheaper.
        step = max(1, min(rgb.shape[0] // (4 * _THUMB_SIZE[1]), rgb.shape[1] // (4 * _THUMB_SIZE[0])))
        small = cv2.resize(rgb[::step, ::step], _THUMB_SIZE, interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        thumb = gray.astype(np.int16)
        previous, self._thumb = self._thumb, thumb
        if previous is None:
            return False
        return float(np.abs(thumb - previous).mean()) > self.cut_threshold


class FramePlanner:
    """Follows a tracker's schedule ahead of it and runs its full detections (see module docstring).

    Make one with :meth:`FaceTracker.planner` and call :meth:`plan` once per frame,
    in order, e.g. in a decode or worker thread; pass each result to
    ``FaceTracker.update(frame_idx, rgb, plan)``. ``orientation`` returns the
    quarter turns the tracker detects in now: while a video plays it rarely changes,
    and a plan made for a stale orientation only costs the tracker a detection.
    ``lock`` is held around each detection and shared with the tracker's own
    detections (orientation searches), because not every backend (OpenCV's cascade)
    may be called from two threads at once.
    """

    def __init__(self, detector: FaceDetector, schedule: DetectionSchedule, orientation: Callable[[], int],
                 lock: threading.Lock | None = None, max_side: int | None = WORK_MAX_SIDE):
        self.detector = detector
        self.schedule = schedule
        self.orientation = orientation
        self.lock: ContextManager = lock if lock is not None else nullcontext()
        self.max_side = max_side

    def plan(self, rgb: np.ndarray) -> FramePlan:
        """The plan for the next frame: schedule decision, and full detections on a detection frame.

        Frames larger than ``max_side`` are planned on their working copy
        (:mod:`affectseq.faces.working`), which the plan carries to the tracker.
        """
        rgb = check_rgb(rgb)
        work, scale = working_frame(rgb, self.max_side)
        kept = work if scale != 1.0 else None
        cut, detect = self.schedule.step(work)
        if not detect:
            return FramePlan(cut, detect, work=kept, scale=scale)
        turns = int(self.orientation())
        with self.lock:
            found = self.detector.detect(rotate_frame(work, turns))
        return FramePlan(cut, detect, {turns: found}, work=kept, scale=scale)
