"""Tracked, aligned face crops of a video, frame by frame: the one face stage of ``predict`` and extraction.

```python
from affectseq.faces.stream import FaceCropStream
for face in FaceCropStream("talk.mp4", detect_every=8):
    face.frame_idx, face.time_sec, face.face_id, face.box, face.landmarks, face.score
    face.crop                                  # (112, 112, 3) uint8 RGB, ABAW cropped_aligned framing
```

Three steps, each a small piece used by ``predict`` (offline and live), ``affectseq data
faces`` and direct extraction alike:

1. **decode** (:func:`working_frames`): each frame is shrunk once to its working copy
   (:func:`~affectseq.faces.working.working_frame`), so only bounded copies travel on;
2. **plan**: the tracker's :class:`~affectseq.faces.schedule.FramePlanner` decides on and
   runs the full detections (they depend on the frames only);
3. **track and align** (:class:`FaceStage`): :meth:`FaceTracker.update` takes the plan,
   the main-face rule applies (:class:`~affectseq.faces.tracking.MainFace`) and
   :func:`~affectseq.faces.align.align_faces` cuts the crops from the working copy. Boxes and
   landmarks are reported in the video's full-resolution upright pixels.

By default the steps run inline, one after the other, which suits callers that parallelise
over videos (``affectseq data faces --workers``). ``ahead=True`` (``predict``) runs decoding
and planning in two threads ahead of tracking, on other cores; tracks are identical either
way (``tests/test_faces_schedule.py``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

from affectseq.errors import ConfigError
from affectseq.faces.align import align_faces
from affectseq.faces.detector import DEFAULT_DETECTOR, NETWORK_DETECTORS, Detection, create_detector
from affectseq.faces.settings import DEFAULT_DETECT_EVERY, FaceSettings
from affectseq.faces.tracking import FaceTracker, MainFace, TrackedFace
from affectseq.faces.working import detection_to_full, working_frame
from affectseq.utils.prefetch import prefetch
from affectseq.utils.threads import set_loaded_torch_threads

ALIGNED_SIZE = 112
# Frames in flight between the threads of ``ahead=True``: 24 decoded + 8 planned (a 640x360
# frame is 0.7 MB, a working copy at most 1920 px 6 MB).
DECODE_AHEAD = 24
PLAN_AHEAD = 8

Aligner = Callable[[np.ndarray, list[Detection]], np.ndarray]


class FaceSource(Protocol):
    """What finds the faces of each frame, in decode order: a :class:`FaceTracker` or a stand-in.

    ``update`` returns the frame's faces as :class:`TrackedFace` or ``(face_id, Detection)``
    pairs, ids stable along a track; it may take the frame's plan as a third argument when
    the source has ``planner()`` (as the tracker does). ``reset()`` is called, when present,
    before a video starts.
    """

    def update(self, frame_idx: int, rgb: np.ndarray) -> Sequence[TrackedFace | tuple[int, Detection]]: ...


def make_tracker(detector: str = DEFAULT_DETECTOR, detect_every: int = DEFAULT_DETECT_EVERY,
                 main_face_only: bool = False, backend: str = "auto") -> FaceTracker:
    """The face tracker of ``predict`` and of :class:`FaceCropStream`: ``create_detector(detector)`` tracked.

    One constructor for both, so crops made for training come from exactly the faces
    ``predict`` sees. ``backend`` (``auto``/``onnx``/``torch``) is the networks' runtime of a
    detector that has one (MTCNN; ``auto``: ONNX Runtime on CPU). Raises
    :class:`~affectseq.errors.SettingError` for settings out of range
    (:mod:`affectseq.faces.settings`), before any detector is built.
    """
    FaceSettings(detector, detect_every, main_face_only)
    options = {"backend": backend} if detector.strip().lower() in NETWORK_DETECTORS else {}
    return FaceTracker(create_detector(detector, **options), detect_every=detect_every,
                       main_face_only=main_face_only)


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


@dataclass(frozen=True)
class WorkFrame:
    """A decoded frame as its working copy: ``rgb`` at most ``WORK_MAX_SIDE``; ``scale`` = copy / video pixels."""

    frame_idx: int
    time_sec: float
    rgb: np.ndarray
    scale: float


def working_frames(frames: Iterable[Any]) -> Iterator[WorkFrame]:
    """The decode step: :class:`~affectseq.io.video.VideoFrame` s as working copies, shrunk where they are read.

    Shrinking right after decoding means only bounded copies wait in queues (an 8K frame
    would be 100 MB each).
    """
    for frame in frames:
        rgb, scale = working_frame(frame.rgb)
        yield WorkFrame(frame.frame_idx, float(frame.time_sec), rgb, scale)


class FaceStage:
    """Track and align one frame at a time: ``stage(frame, plan) -> FrameFaces`` (step 3 of the module).

    ``source``: a :class:`FaceTracker` or any :class:`FaceSource`. ``main_face_only`` applies
    :class:`~affectseq.faces.tracking.MainFace` unless the source already does (a tracker made
    with ``main_face_only``): one rule, applied once. ``aligner`` (frame, detections -> uint8
    crops) replaces :func:`~affectseq.faces.align.align_faces` for custom setups.
    """

    def __init__(self, source: FaceSource, *, main_face_only: bool = False, size: int = ALIGNED_SIZE,
                 aligner: Aligner | None = None):
        self.source = source
        self.size = int(size)
        self.aligner = aligner
        selects = bool(getattr(source, "main_face_only", False))
        self.main_face = MainFace() if main_face_only and not selects else None

    def reset(self) -> None:
        """Before a new video: the source and the main-face rule start over."""
        reset = getattr(self.source, "reset", None)
        if reset is not None:
            reset()
        if self.main_face is not None:
            self.main_face.reset()

    def planner(self) -> Any:
        """The source's :class:`~affectseq.faces.schedule.FramePlanner` (made after :meth:`reset`), or None."""
        make = getattr(self.source, "planner", None)
        return make() if make is not None else None

    def __call__(self, frame: WorkFrame, plan: Any = None) -> FrameFaces:
        if plan is None:  # a source without a planner takes no plan argument
            found = self.source.update(frame.frame_idx, frame.rgb)
        else:
            found = self.source.update(frame.frame_idx, frame.rgb, plan)
        tracked = [f if isinstance(f, TrackedFace) else TrackedFace(int(f[0]), f[1]) for f in found]
        if self.main_face is not None:
            main = self.main_face.select([t.face_id for t in tracked], [t.detection.area for t in tracked])
            tracked = [] if main is None else [tracked[main]]
        detections = [t.detection for t in tracked]
        crops = (self.aligner(frame.rgb, detections) if self.aligner is not None
                 else align_faces(frame.rgb, detections, size=self.size))
        faces = []
        for t, crop in zip(tracked, crops):
            full = detection_to_full(t.detection, frame.scale)
            box = tuple(float(v) for v in full.box)
            faces.append(FaceCrop(frame.frame_idx, frame.time_sec, int(t.face_id), box,  # type: ignore[arg-type]
                                  full.landmarks, float(full.score), crop, bool(t.detected)))
        return FrameFaces(frame.frame_idx, frame.time_sec, tuple(faces))


class FaceCropStream:
    """Iterate over the tracked faces of ``video`` with their aligned crops (see module docstring).

    ``tracker``: a :class:`FaceTracker` (reset first) or any :class:`FaceSource`; default
    :func:`make_tracker` with ``detector``, ``detect_every`` and ``main_face_only``.
    ``stride`` processes every k-th frame (``frame_idx`` keeps counting every decoded frame).
    Iterating yields :class:`FaceCrop` per face; :meth:`frames` yields :class:`FrameFaces` per
    frame, faces or not. The video is opened when iteration starts, so a stream is cheap to
    make and can be iterated again (from the start, with the tracker reset).

    ``ahead``: decode and plan in two threads ahead of tracking (``predict``);
    ``torch_threads`` is then the planning thread's intra-op thread count (None: torch's
    default). ``aligner`` replaces :func:`~affectseq.faces.align.align_faces`.
    After iterating, :attr:`timings` says where the time went (seconds): ``faces_sec``
    (tracking and alignment), ``wait_frames_sec`` (waiting for decoded/planned frames),
    ``loop_cpu_sec`` (CPU time of the consuming thread over the whole loop, the consumer's
    own work included) and ``detect_ahead_cpu_sec`` (the planning thread's CPU time).
    """

    def __init__(self, video: str | os.PathLike[str], tracker: FaceSource | None = None, *,
                 detector: str = DEFAULT_DETECTOR, detect_every: int = DEFAULT_DETECT_EVERY,
                 main_face_only: bool = False, size: int = ALIGNED_SIZE, stride: int = 1,
                 aligner: Aligner | None = None, ahead: bool = False, torch_threads: int | None = None):
        if stride < 1:
            raise ConfigError(f"stride must be >= 1, got {stride}")
        self.video = Path(video)
        self.tracker = tracker if tracker is not None else make_tracker(detector, detect_every, main_face_only)
        self.stage = FaceStage(self.tracker, main_face_only=main_face_only, size=size, aligner=aligner)
        self.size = int(size)
        self.stride = int(stride)
        self.ahead = bool(ahead)
        self.torch_threads = torch_threads
        self.timings: dict[str, float] = {}

    def __iter__(self) -> Iterator[FaceCrop]:
        for frame in self.frames():
            yield from frame.faces

    def frames(self, reader: Any = None) -> Iterator[FrameFaces]:
        """One :class:`FrameFaces` per processed frame, in decode order.

        ``reader``: an open :class:`~affectseq.io.video.VideoReader` of the video made with
        this ``stride`` (``predict`` probes the video first); default: one opened here.
        Raises :class:`~affectseq.errors.InputError` for a file that is not a readable
        video; a stream that breaks off yields its readable frames, then raises
        :class:`~affectseq.io.video.VideoDecodeError`.
        """
        from affectseq.io.video import VideoReader

        self.stage.reset()
        planner = self.stage.planner()  # after reset: a tracker fed plans needs a fresh planner
        reader = reader if reader is not None else VideoReader(self.video, stride=self.stride)
        clock: dict[str, float] = {}
        planned = self._planned(reader, planner, clock)
        faces_sec = wait_sec = 0.0
        # Thread CPU time is read once for the whole loop, not per frame: on a loaded machine
        # that syscall can take milliseconds, all the while holding the GIL every thread needs.
        loop_cpu = time.thread_time()
        try:
            while True:
                t0 = time.perf_counter()
                item = next(planned, None)
                t1 = time.perf_counter()
                wait_sec += t1 - t0  # the decode/plan steps are behind
                if item is None:
                    break
                faces = self.stage(*item)
                faces_sec += time.perf_counter() - t1
                yield faces
        finally:
            planned.close()  # an error mid-video must not leave the decode and plan threads running
            reader.close()
            self.timings = {"faces_sec": faces_sec, "wait_frames_sec": wait_sec,
                            "loop_cpu_sec": time.thread_time() - loop_cpu,
                            "detect_ahead_cpu_sec": clock.get("plan_cpu_sec", 0.0)}

    def _planned(self, reader: Any, planner: Any, clock: dict[str, float]) -> Iterator[tuple[WorkFrame, Any]]:
        frames: Iterator[WorkFrame] = working_frames(reader)
        if self.ahead:
            frames = prefetch(frames, DECODE_AHEAD, "affectseq-decode")
        if planner is None:
            return ((frame, None) for frame in frames)
        planned = _plan(frames, planner, self.torch_threads if self.ahead else None, clock)
        return prefetch(planned, PLAN_AHEAD, "affectseq-detect") if self.ahead else planned


def _plan(frames: Iterator[WorkFrame], planner: Any, torch_threads: int | None,
          clock: dict[str, float]) -> Iterator[tuple[WorkFrame, Any]]:
    """``(frame, FramePlan)`` pairs: the schedule and full detections; ``clock["plan_cpu_sec"]`` gets their CPU time."""
    # This thread only (the same detections as on the tracking thread); nothing to set on ONNX Runtime.
    set_loaded_torch_threads(torch_threads)
    cpu = time.thread_time()
    try:
        for frame in frames:
            yield frame, planner.plan(frame.rgb)
    finally:
        clock["plan_cpu_sec"] = time.thread_time() - cpu
        close = getattr(frames, "close", None)
        if close is not None:
            close()  # stops the decode thread now, not at garbage collection
