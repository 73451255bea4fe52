"""affectseq.faces stage: face detection (backends by name), alignment and tracking.

```python
from affectseq.faces import create_detector, align_face, FaceTracker
detector = create_detector("mtcnn")          # or "haar" (no landmarks)
faces = detector.detect(rgb)                 # list[Detection], box (x1, y1, x2, y2) + 5 landmarks
crop = align_face(rgb, faces[0])             # (112, 112, 3) uint8, five-point template framing
tracker = FaceTracker(detector, detect_every=8)
for frame in reader:                         # affectseq.io.video.VideoReader
    tracked = tracker.update(frame.frame_idx, frame.rgb)   # list[TrackedFace(face_id, detection)]
```
"""

from affectseq.faces.align import TEMPLATE_112, align_face, align_faces
from affectseq.faces.detector import (
    DEFAULT_DETECTOR,
    LANDMARK_NAMES,
    Detection,
    FaceDetector,
    available_detectors,
    create_detector,
)
from affectseq.faces.tracking import FaceTracker, TrackedFace
from affectseq.faces.working import WORK_MAX_SIDE, detection_to_full, working_frame

__all__ = [
    "DEFAULT_DETECTOR", "LANDMARK_NAMES", "TEMPLATE_112", "Detection", "FaceDetector", "FaceTracker",
    "TrackedFace", "WORK_MAX_SIDE", "align_face", "align_faces", "available_detectors", "create_detector",
    "detection_to_full", "working_frame",
]
