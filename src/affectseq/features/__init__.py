"""Stage 4, features: frame encoders (registry + data contract), preprocessing, frame models, the feature
store and extraction. Frame-model files are read and written by :mod:`affectseq.modelfile` (headers and
tensors) and :mod:`affectseq.models.factory` (``load_frame_model``/``save_frame_model``, the networks).

The main names are importable from here lazily (``from affectseq.features import create_encoder``)
so that importing the package does not import torch.
"""

from __future__ import annotations

from affectseq.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "EncoderSpec": "affectseq.features.encoders",
    "create_encoder": "affectseq.features.encoders",
    "list_encoders": "affectseq.features.encoders",
    "preprocess_faces": "affectseq.features.preprocess",
    "FrameModel": "affectseq.features.frame_model",
    "read_frame_model_header": "affectseq.modelfile.frame",
    "default_model_path": "affectseq.features.shipped",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
