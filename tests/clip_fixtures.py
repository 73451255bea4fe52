"""Small clip files for the clip-layout tests: tiny mp4s, folders of frame images, an unreadable clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_mp4(path: Path, n_frames: int, fps: int = 25, size: int = 64, seed: int = 0) -> Path:
    """A tiny H.264 mp4 of ``n_frames`` noise frames (exact header frame count)."""
    from affectseq.data.synth.writer import Mp4Writer

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with Mp4Writer(path, size, size, fps, crf=30, preset="ultrafast") as writer:
        for _ in range(n_frames):
            writer.write(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    return path


def write_frames(folder: Path, n_frames: int, size: int = 32, names: str = "{:d}.jpg") -> Path:
    """A folder of ``n_frames`` JPEG frames; frame ``k`` is uniformly grey level ``10 * k``."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n_frames):
        cv2.imwrite(str(folder / names.format(k + 1)), np.full((size, size, 3), 10 * k, np.uint8))
    return folder


def write_garbage(path: Path) -> Path:
    """A file with a video suffix that is not a video."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a video at all" * 10)
    return path
