"""Helpers for the predict tests: scripted face sources, a known-answer frame stage, tiny models, tiny videos.

(No tests here; the ``test_`` prefix keeps it inside the predict test namespace.)
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from affectseq.labels import EXPR_CLASSES_7


class ScriptedFaces:
    """A FaceSource reporting fixed boxes: ``faces[face_id] = box`` on frames where ``present(frame_idx, face_id)``."""

    def __init__(self, faces: dict[int, tuple[float, float, float, float]],
                 present: Callable[[int, int], bool] = lambda f, i: True):
        self.faces = faces
        self.present = present
        self.calls: list[int] = []

    def update(self, frame_idx: int, rgb: np.ndarray) -> list:
        from affectseq.faces import Detection

        self.calls.append(frame_idx)
        return [(fid, Detection(box=box, score=0.9, landmarks=None))
                for fid, box in self.faces.items() if self.present(frame_idx, fid)]


def box_crops(rgb: np.ndarray, detections: list) -> np.ndarray:
    """Aligner stand-in: the box contents resized to 112x112."""
    import cv2

    out = []
    for det in detections:
        x1, y1, x2, y2 = (int(round(v)) for v in det.box)
        out.append(cv2.resize(rgb[max(y1, 0):y2, max(x1, 0):x2], (112, 112)))
    return np.stack(out) if out else np.zeros((0, 112, 112, 3), np.uint8)


class BrightnessStage:
    """Known-answer frame stage: class = brightness bucket of the crop (7 buckets over 0..255), prob 1."""

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        bucket = np.minimum(crops.reshape(len(crops), -1).mean(axis=1) // (256 / 7), 6).astype(int)
        probs = np.eye(7, dtype=np.float32)[bucket]
        return {"expr_prob": probs}


def brightness_bundle(window_sec: float = 0.0):
    from affectseq.predict.stages import ModelBundle, ModelInfo, SmoothingTemporal

    info = ModelInfo(model_id="brightness", kind="frame", classes=EXPR_CLASSES_7, has_va=False)
    return ModelBundle(frame_stage=BrightnessStage(), temporal_stage=SmoothingTemporal(window_sec), info=info)


def save_tiny_frame_model(path: Path, tasks=("expr",), seed: int = 0, classes=EXPR_CLASSES_7) -> Path:
    """An untrained, tiny (timm ``test_resnet`` at 32x32) frame model checkpoint: fast on CPU."""
    import torch

    from affectseq.models.factory import save_frame_model
    from affectseq.features.encoders import create_encoder
    from affectseq.features.frame_model import FrameModel

    torch.manual_seed(seed)
    model = FrameModel(create_encoder("test_resnet", input_size=32), tasks=list(tasks), expr_classes=classes)
    return save_frame_model(path, model, {"note": "untrained test model"})


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25, codec: str = "libx264",
                rotation: int | None = None, audio: bool = False) -> Path:
    """Encode RGB frames to ``path`` with PyAV (optionally a display rotation and a silent AAC track)."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if rotation is not None:
            stream.metadata["rotate"] = str(rotation)
        audio_stream = container.add_stream("aac", rate=16000) if audio else None
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            samples = np.zeros((1, 16000 * len(frames) // fps), np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in audio_stream.encode(frame):
                container.mux(packet)
            for packet in audio_stream.encode():
                container.mux(packet)
    return path


def gray_frames(values: list[int], size: tuple[int, int] = (96, 128)) -> list[np.ndarray]:
    """Uniform frames of the given gray levels (H, W = ``size``)."""
    return [np.full((*size, 3), v, np.uint8) for v in values]
