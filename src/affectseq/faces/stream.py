"""Tracked, aligned face crops of a video, frame by frame: the face stage of ``predict`` as a stream.

```python
from affectseq.faces.stream import FaceCropStream
for face in FaceCropStream("talk.mp4", detect_every=8):
    face.frame_idx, face.time_sec, face.face_id, face.box, face.landmarks, face.score
    face.crop                                  # (112, 112, 3) uint8 RGB, ABAW cropped_aligned framing
```

It runs the very steps of ``affectseq.predict``'s face stage, with the same objects:
each decoded frame is shrunk to its working copy (:func:`~affectseq.faces.working.working_frame`),
a :class:`~affectseq.faces.schedule.FramePlanner` from the tracker decides on and runs
full detections, :meth:`FaceTracker.update` takes that plan, and
:func:`~affectseq.faces.align.align_faces` cuts the crops from the working copy. Boxes and
landmarks are reported in the video's full-resolution upright pixels. ``predict`` runs
the planner in a worker thread ahead of tracking; here it runs inline, which gives
identical tracks (``tests/test_faces_schedule.py``) and suits callers that parallelise
over videos (``affectseq data faces --workers``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from affectseq.errors import ConfigError
from affectseq.faces.align import align_faces
from affectseq.faces.detector import DEFAULT_DETECTOR, create_detector
from affectseq.faces.tracking import FaceTracker
from affectseq.faces.working import detection_to_full, working_frame

# FaceTracker's own default and predict's: the setting the tracker's accuracy is measured at.
DEFAULT_DETECT_EVERY = 8
ALIGNED_SIZE = 112


def make_tracker(detector: str = DEFAULT_DETECTOR, detect_every: int = DEFAULT_DETECT_EVERY,
                 main_face_only: bool = False) -> FaceTracker:
    """The face tracker of ``predict`` and of :class:`FaceCropStream`: ``create_detector(detector)`` tracked.

    One constructor for both, so crops made for training come from exactly the faces
    ``predict`` sees. Raises :class:`~affectseq.errors.ConfigError` for ``detect_every < 1``.
    """
    if detect_every < 1:
        raise ConfigError(f"--detect-every must be >= 1, got {detect_every}")
    return FaceTracker(create_detector(detector), detect_every=detect_every, main_face_only=main_face_only)


@dataclass(frozen=True)
class FaceCrop:
    """One tracked face on one frame. ``box`` (x1, y1, x2, y2) and ``landmarks`` (5, 2) are in the
    video's upright full-resolution pixels; ``crop`` is the aligned (size, size, 3) uint8 RGB crop;
    ``detected`` is True when a full detection (not tracking) gave the box on this frame."""

    frame_idx: int
    time_sec: float
    face_id: int
    box: tuple[float, float, float, float]
    landmarks: np.ndarray | None
    score: float
    crop: np.ndarray
    detected: bool = True


@dataclass(frozen=True)
class FrameFaces:
    """Every tracked face of one decoded frame (``faces`` is empty on a frame without a face)."""

    frame_idx: int
    time_sec: float
    faces: tuple[FaceCrop, ...]


class FaceCropStream:
    """Iterate over the tracked faces of ``video`` with their aligned crops (see module docstring).

    ``tracker``: a :class:`FaceTracker` to use (reset first); default :func:`make_tracker`
    with ``detector``, ``detect_every`` and ``main_face_only``. ``stride`` processes every
    k-th frame (``frame_idx`` keeps counting every decoded frame). Iterating yields
    :class:`FaceCrop` per face; :meth:`frames` yields :class:`FrameFaces` per frame, faces
    or not. The video is opened when iteration starts, so a stream is cheap to make and
    can be iterated again (from the start, with the tracker reset).
    """

    def __init__(self, video: str | os.PathLike[str], tracker: FaceTracker | None = None, *,
                 detector: str = DEFAULT_DETECTOR, detect_every: int = DEFAULT_DETECT_EVERY,
                 main_face_only: bool = False, size: int = ALIGNED_SIZE, stride: int = 1):
        if stride < 1:
            raise ConfigError(f"stride must be >= 1, got {stride}")
        self.video = Path(video)
        self.tracker = tracker if tracker is not None else make_tracker(detector, detect_every, main_face_only)
        self.size = int(size)
        self.stride = int(stride)

    def __iter__(self) -> Iterator[FaceCrop]:
        for frame in self.frames():
            yield from frame.faces

    def frames(self) -> Iterator[FrameFaces]:
        """One :class:`FrameFaces` per processed frame, in decode order.

        Raises :class:`~affectseq.errors.InputError` for a file that is not a readable
        video; a stream that breaks off yields its readable frames, then raises
        :class:`~affectseq.io.video.VideoDecodeError`.
        """
        from affectseq.io.video import VideoReader

        self.tracker.reset()
        planner = self.tracker.planner()  # after reset: a tracker fed plans needs a fresh planner
        with VideoReader(self.video, stride=self.stride) as reader:
            for frame in reader:
                yield self._faces_of(frame.frame_idx, frame.time_sec, frame.rgb, planner)

    def _faces_of(self, frame_idx: int, time_sec: float, rgb: np.ndarray, planner) -> FrameFaces:
        # The same order of steps as predict: shrink once, plan, track on the copy, align on the copy.
        work, scale = working_frame(rgb)
        tracked = self.tracker.update(frame_idx, work, planner.plan(work))
        crops = align_faces(work, [t.detection for t in tracked], size=self.size)
        faces = []
        for t, crop in zip(tracked, crops):
            full = detection_to_full(t.detection, scale)
            box = tuple(float(v) for v in full.box)
            faces.append(FaceCrop(frame_idx, float(time_sec), int(t.face_id), box,  # type: ignore[arg-type]
                                  full.landmarks, float(full.score), crop, bool(t.detected)))
        return FrameFaces(frame_idx, float(time_sec), tuple(faces))
