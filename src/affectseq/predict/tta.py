"""Test-time flip averaging (``predict --tta-flip``): each face's outputs averaged with its mirror image's.

A wrapper around any frame stage (torch or ONNX), so both backends share the one implementation:
the aligned crops and their horizontal mirrors go through the stage as one batch, and the
expression probabilities (already calibrated by the model's temperature) and VA values of each
pair are averaged. The alignment template is left-right symmetric, so a mirrored crop is the
aligned crop of the mirrored face. It costs a second pass per face (about twice the model stage's
time) for a small accuracy gain; docs/model_card.md gives both, measured on FER+ validation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

AVERAGED = ("expr_prob", "va")  # head outputs a mirror image should agree on


class FlipAveragedStage:
    """``stage(crops)`` averaged with ``stage(mirrored crops)`` for the head outputs; other keys from the
    unmirrored pass."""

    def __init__(self, stage: Any):
        self.stage = stage
        self.spec = getattr(stage, "spec", None)

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        crops = np.asarray(crops)
        n = len(crops)
        both = np.concatenate([crops, crops[:, :, ::-1]], axis=0)  # (N, H, W, C): W is axis 2
        out = self.stage(both)
        result = {}
        for key, value in out.items():
            value = np.asarray(value)
            result[key] = ((value[:n] + value[n:]) / 2).astype(value.dtype) if key in AVERAGED else value[:n]
        return result

    def __getattr__(self, name: str) -> Any:  # the wrapped stage's other attributes (onnx_path, model, ...)
        if name == "stage":  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.stage, name)
