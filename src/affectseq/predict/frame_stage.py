"""The crop framing of video faces and the torch frame stage, shared by every model loader.

:mod:`affectseq.predict.model` (frame models), :mod:`affectseq.predict.sequence` (sequence
bundles) and :mod:`affectseq.predict.onnx_backend` all need them; they live here so those
modules import this one instead of each other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Framing of the crops affectseq.faces.align_face makes (one of affectseq.modelfile.schema.FRAMINGS).
VIDEO_FACE_FRAMING = "abaw112"


class TorchFrameStage:
    """A frame model on torch: aligned crops -> ``expr_prob``/``va`` (or encoder ``features``)."""

    def __init__(self, model: Any, device: str, output: str = "heads"):
        self.model = model
        self.spec = model.spec
        self.device = device
        self.output = output

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        from affectseq.features.heads import head_outputs
        from affectseq.features.preprocess import preprocess_faces

        x = preprocess_faces(self.spec, crops, framing=VIDEO_FACE_FRAMING).to(self.device, non_blocking=True)
        with torch.inference_mode():
            if self.output == "features":
                return {"features": self.model.forward_features(x).float().cpu().numpy()}
            out = self.model(x)
            out.pop("au", None)  # predict reports expression and VA only
            return {key: value.cpu().numpy() for key, value in head_outputs(out).items()}
