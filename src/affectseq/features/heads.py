"""Task heads and their outputs: the one implementation frame models and temporal models share.

A head is one ``nn.Linear`` per task on a shared representation: ``expr`` (7 or 8
classes) and ``au`` (13) give logits, ``va`` (2) gives ``tanh`` outputs, the label
range. :func:`head_outputs` turns a network's raw outputs into what users read, under
one key naming used by every stage (training's scoring, ``predict``, streaming, the
ONNX export):

=========  ==================  =====================================
head       raw output          :func:`head_outputs` key and value
=========  ==================  =====================================
``expr``   logits (..., C)     ``expr_prob``: softmax over classes
``va``     tanh (..., 2)       ``va``: valence, arousal in [-1, 1]
``au``     logits (..., 13)    ``au_prob``: sigmoid per action unit
=========  ==================  =====================================

Files pairing predictions with truths (``val_predictions.npz``, see
``affectseq.evaluation.predictions``) name VA ``va_pred`` beside ``va_true``; the other keys
are the same there (:data:`PREDICTION_FILE_KEYS`). The heads live in ``features`` (stage 4) because the frame model
(``features.frame_model``) uses them and may import nothing later; ``models.temporal``
imports them from here.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

TASKS: tuple[str, ...] = ("expr", "va", "au")
OUTPUT_KEYS: dict[str, str] = {"expr": "expr_prob", "va": "va", "au": "au_prob"}
# The same outputs in files that pair them with truths (``<task>_true``): "va" alone would be ambiguous there.
PREDICTION_FILE_KEYS: dict[str, str] = {"expr_prob": "expr_prob", "va": "va_pred", "au_prob": "au_prob"}


def build_heads(in_dim: int, sizes: Mapping[str, int]) -> nn.ModuleDict:
    """One ``nn.Linear(in_dim, n)`` per task of ``sizes`` (task -> outputs), created in ``sizes``' order.

    The order is kept because each layer's initial weights are drawn in turn from torch's
    generator: a seeded run gets the same heads as before.
    """
    unknown = set(sizes) - set(TASKS)
    if unknown or not sizes:
        raise ValueError(f"heads must be a non-empty subset of {TASKS}, got {sorted(sizes)}")
    if "va" in sizes and sizes["va"] != 2:
        raise ValueError(f"the va head has 2 outputs (valence, arousal), got {sizes['va']}")
    return nn.ModuleDict({task: nn.Linear(in_dim, int(n)) for task, n in sizes.items()})


def apply_heads(heads: nn.ModuleDict, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Raw outputs of every head on ``x`` (..., in_dim): logits, and ``tanh`` for ``va``."""
    out = {}
    for task, linear in heads.items():
        y = linear(x)
        out[task] = torch.tanh(y) if task == "va" else y
    return out


class TaskHeads(nn.Module):
    """:func:`build_heads` as a module (temporal models); works on (..., in_dim) inputs of any rank."""

    def __init__(self, in_dim: int, sizes: Mapping[str, int]):
        super().__init__()
        self.linears = build_heads(in_dim, sizes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return apply_heads(self.linears, x)


def head_outputs(raw: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Raw head outputs -> ``expr_prob`` / ``va`` / ``au_prob`` (see the module's table), as float32.

    Works on any leading shape; the class axis is the last one. Heads not in ``raw`` are left out.
    """
    out: dict[str, torch.Tensor] = {}
    for task, y in raw.items():
        y = y.float()
        if task == "expr":
            y = torch.softmax(y, dim=-1)
        elif task == "au":
            y = torch.sigmoid(y)
        elif task != "va":
            raise ValueError(f"unknown head {task!r}; heads are {', '.join(TASKS)}")
        out[OUTPUT_KEYS[task]] = y
    return out
