"""affectseq: emotion recognition on video with frame CNN features and recurrent temporal models.

The Python API mirrors the command line; heavy modules (torch, PyAV) load on
first use, so ``import affectseq`` is cheap::

    import affectseq
    frames = affectseq.predict_video("clip.mp4")          # pandas DataFrame, one row per frame and face
    for row in affectseq.live(0): ...                     # rows from a camera (or stream) as they happen
    info = affectseq.probe_video("clip.mp4")              # fps, frame count, size, rotation
    dataset = affectseq.AbawDataset("/data/Aff-Wild2")    # any ABAW edition's layout
    clips = affectseq.open_dataset("/data/DFEW", fold=2)  # any registered layout, detected
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> module that defines it (resolved lazily by __getattr__).
_LAZY_EXPORTS: dict[str, str] = {
    "predict_video": "affectseq.api",
    "live": "affectseq.api",
    "VideoReader": "affectseq.io.video",
    "probe_video": "affectseq.io.video",
    "AbawDataset": "affectseq.data.abaw",
    "open_dataset": "affectseq.data.registry",
    "register_layout": "affectseq.data.registry",
    "Layout": "affectseq.data.registry",
    "load_fer2013": "affectseq.data.images",
    "load_image_folder": "affectseq.data.images",
    "create_detector": "affectseq.faces",
    "create_encoder": "affectseq.features.encoders",
    "load_frame_model": "affectseq.models.factory",
    "FeatureStore": "affectseq.features.store",
}

__all__ = ["__version__", *_LAZY_EXPORTS]


# Not affectseq.utils.lazy (which the subpackages use): utils imports this package (its version), and the
# package-level import graph has no loops (tests/test_architecture.py).
def __getattr__(name: str) -> Any:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'affectseq' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
