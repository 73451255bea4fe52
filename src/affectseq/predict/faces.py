"""The face stage of ``predict``: :mod:`affectseq.faces.stream`, the one used by extraction too.

A face source turns frames into tracked faces, ids stable along each track: the
default one is the tracker of :func:`affectseq.faces.stream.make_tracker` (detection every
``detect_every`` frames, tracking in between). Tests and callers may plug in any object
with an ``update(frame_idx, rgb)`` method returning ``(face_id, Detection)`` pairs
(:class:`~affectseq.faces.stream.FaceSource`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Detect every 8th frame by default (FaceTracker's own default, the setting its accuracy is
# measured at): at 24-30 fps faces move a few pixels between detections, which the tracker
# follows, and full detection is the costliest stage. Defined with the tracker's constructor
# in affectseq.faces.stream, which `affectseq data faces` shares with predict.
from affectseq.faces.stream import ALIGNED_SIZE, DEFAULT_DETECT_EVERY, FaceSource, make_tracker

__all__ = ["ALIGNED_SIZE", "DEFAULT_DETECT_EVERY", "FaceSource", "align_crops", "make_face_source"]


def make_face_source(
    detector: str = "mtcnn",
    detect_every: int = DEFAULT_DETECT_EVERY,
    main_face_only: bool = False,
) -> FaceSource:
    """The default face source: :func:`~affectseq.faces.stream.make_tracker`, as ``affectseq data faces`` uses."""
    return make_tracker(detector, detect_every, main_face_only)


def align_crops(rgb: np.ndarray, detections: list[Any], size: int = ALIGNED_SIZE) -> np.ndarray:
    """Aligned ``(len(detections), size, size, 3)`` uint8 crops of one frame (ABAW-like framing)."""
    from affectseq.faces import align_faces

    return align_faces(rgb, detections, size=size)
