"""``FrameModel``: a frame encoder plus task heads (EXPR logits, VA in [-1, 1], AU logits).

A plain ``nn.Module``: losses and metrics live in ``affectseq.training``. The
feature a feature store keeps is ``model.forward_features(x)`` (the encoder's
output, before dropout and heads).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from affectseq import labels
from affectseq.features.encoders import EncoderSpec
from affectseq.features.heads import TASKS, apply_heads, build_heads


class FrameModel(nn.Module):
    """Encoder -> dropout -> one linear head per task.

    ``forward(x)`` returns ``{"expr": logits (N, C), "va": tanh (N, 2), "au": logits (N, 13)}``
    for the tasks the model has. ``expr_temperature`` (1.0 unless the model file's header sets one)
    divides the EXPR logits: the calibration temperature fitted on validation data, so the softmax
    of every consumer of ``forward`` (predict's torch and ONNX backends, serve, live, the API,
    ``evaluate-model``) gives the same calibrated probabilities; argmax is unchanged.
    """

    expr_temperature: float = 1.0

    def __init__(
        self,
        encoder: nn.Module,
        tasks: Sequence[str],
        expr_classes: Sequence[str] = labels.EXPR_CLASSES_7,
        num_aus: int = len(labels.AU_NAMES),
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        unknown = [t for t in tasks if t not in TASKS]
        if unknown or not tasks:
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {list(tasks)}")
        self.encoder = encoder
        self.tasks: tuple[str, ...] = tuple(t for t in TASKS if t in tasks)
        self.expr_classes: tuple[str, ...] = tuple(expr_classes) if "expr" in self.tasks else ()
        drop = getattr(encoder, "head_dropout", 0.0) if dropout is None else dropout
        self.dropout = nn.Dropout(drop)
        sizes = {"expr": len(self.expr_classes), "va": 2, "au": num_aus}
        self.heads = build_heads(self.spec.feature_dim, {task: sizes[task] for task in self.tasks})

    @property
    def spec(self) -> EncoderSpec:
        """The encoder's data contract."""
        return self.encoder.spec

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame features (N, feature_dim): what the feature store keeps."""
        return self.encoder.forward_features(x)

    def heads_forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Task outputs from features (dropout applies in training mode only; EXPR logits over the temperature)."""
        out = apply_heads(self.heads, self.dropout(features))
        if "expr" in out and self.expr_temperature != 1.0:
            out["expr"] = out["expr"] / self.expr_temperature
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, C, S, S) preprocessed faces -> task outputs."""
        return self.heads_forward(self.forward_features(x))
