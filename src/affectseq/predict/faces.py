"""The face stage of ``predict``: tracked faces per frame and their aligned crops.

A :class:`FaceSource` turns frames into ``(face_id, Detection)`` pairs with ids
stable along each track; the default one wraps ``affectseq.faces.FaceTracker``
(detection every ``detect_every`` frames, tracking in between). Tests and
callers may plug in any object with the same ``update`` method.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

# Detect every 8th frame by default (FaceTracker's own default, the setting its accuracy is
# measured at): at 24-30 fps faces move a few pixels between detections, which the tracker
# follows, and full detection is the costliest stage. Defined with the tracker's constructor
# in affectseq.faces.stream, which `affectseq data faces` shares with predict.
from affectseq.faces.stream import ALIGNED_SIZE, DEFAULT_DETECT_EVERY


@runtime_checkable
class FaceSource(Protocol):
    """Faces of each frame, in decode order: ``update`` is called once per processed frame."""

    def update(self, frame_idx: int, rgb: np.ndarray) -> list[tuple[int, Any]]:
        """``[(face_id, Detection), ...]`` for this frame (empty when no face)."""
        ...


class TrackerFaceSource:
    """Adapter over ``affectseq.faces.FaceTracker`` (H3's detector + tracker).

    ``planner()`` gives the tracker's :class:`~affectseq.faces.schedule.FramePlanner`:
    ``predict`` runs it in a worker thread so full detections happen ahead of
    tracking, on another core; ``update`` then takes each frame's plan.
    """

    def __init__(self, tracker: Any):
        self.tracker = tracker

    def planner(self) -> Any:
        return self.tracker.planner()

    def update(self, frame_idx: int, rgb: np.ndarray, plan: Any = None) -> list[tuple[int, Any]]:
        tracks = self.tracker.update(frame_idx, rgb, plan)
        return [(int(t.face_id), t.detection) for t in tracks]


def make_face_source(
    detector: str = "mtcnn",
    detect_every: int = DEFAULT_DETECT_EVERY,
    main_face_only: bool = False,
) -> FaceSource:
    """The default face source: ``create_detector(detector)`` tracked with ``FaceTracker``.

    The tracker comes from :func:`affectseq.faces.stream.make_tracker`, the constructor
    :class:`~affectseq.faces.stream.FaceCropStream` uses too.
    """
    from affectseq.faces.stream import make_tracker

    return TrackerFaceSource(make_tracker(detector, detect_every, main_face_only))


def align_crops(rgb: np.ndarray, detections: list[Any], size: int = ALIGNED_SIZE) -> np.ndarray:
    """Aligned ``(len(detections), size, size, 3)`` uint8 crops of one frame (ABAW-like framing)."""
    from affectseq.faces import align_faces

    return align_faces(rgb, detections, size=size)
