"""Still faces through the video path: how much a frame model loses between its own crops and ``predict``.

Each labelled still face (e.g. FER+ validation) is upscaled and pasted into its own
frame of a generated video over a background photo; ``predict``'s path then detects,
tracks and aligns it and the model classifies the aligned crop (cut to the model's
framing by :data:`affectseq.features.preprocess.FRAMING_CROPS`). The same faces are
also classified directly, as the model saw them in training. The gap between the two
accuracies is what the video framing costs; ``framing_box`` lets a caller compare
candidate boxes (a design choice: make it on training or validation faces only).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

FACE_PX = 168  # upscaled face size in the frame (FER faces are 48x48)
FRAME_W, FRAME_H = 480, 320


@dataclass(frozen=True)
class ThroughVideoResult:
    """Accuracies of the same faces classified directly and through the video path."""

    n_faces: int
    found_rate: float          # share of frames whose face was found
    direct_accuracy: float     # all faces, direct
    direct_accuracy_found: float  # faces found in video, direct
    video_accuracy_found: float   # faces found in video, through predict
    agreement: float           # same label both ways, on faces found

    def line(self) -> str:
        """One human-readable line."""
        return (f"{self.n_faces} faces: found {self.found_rate:.3f}; accuracy direct {self.direct_accuracy:.3f} "
                f"(on found {self.direct_accuracy_found:.3f}), through video {self.video_accuracy_found:.3f}; "
                f"agreement {self.agreement:.3f}")


def paste_faces(faces: np.ndarray, background: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """One frame per face: the face upscaled (bicubic) and pasted at a seeded random spot of ``background``."""
    import cv2

    rng = np.random.default_rng(seed)
    frames = []
    for face in faces:
        big = cv2.resize(face, (FACE_PX, FACE_PX), interpolation=cv2.INTER_CUBIC)
        frame = background.copy()
        x = int(rng.integers(20, FRAME_W - FACE_PX - 20))
        y = int(rng.integers(10, FRAME_H - FACE_PX - 10))
        frame[y:y + FACE_PX, x:x + FACE_PX] = big
        frames.append(frame)
    return frames


def write_frames(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Encode RGB frames as H.264 with PyAV."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        container.mux(stream.encode())
    return path


@contextmanager
def framing_box(box: tuple[float, float, float, float] | None) -> Iterator[None]:
    """Temporarily use ``box`` for video faces (abaw112) -> FER framing; ``None`` keeps the shipped one."""
    from affectseq.features import preprocess

    key = ("abaw112", "fer2013")
    saved = preprocess.FRAMING_CROPS[key]
    if box is not None:
        preprocess.FRAMING_CROPS[key] = tuple(box)
    try:
        yield
    finally:
        preprocess.FRAMING_CROPS[key] = saved


def faces_through_video(model: str, faces: np.ndarray, labels: np.ndarray, background: np.ndarray,
                        workdir: str | Path, box: tuple[float, float, float, float] | None = None,
                        seed: int = 0) -> ThroughVideoResult:
    """Classify ``faces`` (N, 48, 48, 3) directly and through ``predict``; see the module docstring.

    ``labels`` index the model's classes. ``background`` is an RGB image resized to the frame.
    """
    import cv2
    import torch

    from affectseq.models.factory import load_frame_model
    from affectseq.features.preprocess import preprocess_faces
    from affectseq.predict.model import load_model
    from affectseq.predict.pipeline import PredictOptions, predict_video_table

    frame_model = load_frame_model(model)
    with torch.inference_mode():
        direct = frame_model(preprocess_faces(frame_model.spec, faces, framing=frame_model.spec.framing))
    direct_pred = direct["expr"].argmax(1).numpy()
    background = cv2.resize(background, (FRAME_W, FRAME_H), interpolation=cv2.INTER_AREA)
    video = write_frames(Path(workdir) / "faces_through_video.mp4", paste_faces(faces, background, seed))
    with framing_box(box):
        bundle = load_model(model, device="cpu", smoothing_sec=0)  # one face per frame: no smoothing
        table = predict_video_table(video, bundle, PredictOptions(detect_every=1, progress=False)).table
    per_frame = table.dropna(subset=["label"]).sort_values("det_score", ascending=False)
    per_frame = per_frame.drop_duplicates("frame_idx").set_index("frame_idx")  # the best face of each frame
    found = per_frame.index.to_numpy()
    classes = list(bundle.info.classes)
    video_pred = per_frame["label"].map(classes.index).to_numpy()
    return ThroughVideoResult(
        n_faces=len(faces),
        found_rate=len(found) / len(faces),
        direct_accuracy=float((direct_pred == labels).mean()),
        direct_accuracy_found=float((direct_pred[found] == labels[found]).mean()),
        video_accuracy_found=float((video_pred == labels[found]).mean()),
        agreement=float((video_pred == direct_pred[found]).mean()),
    )
