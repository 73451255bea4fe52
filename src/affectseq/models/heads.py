"""Task heads shared by the temporal models: expression logits, valence/arousal in [-1, 1], AU logits."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

KNOWN_TASKS = ("expr", "va", "au")


class TaskHeads(nn.Module):
    """One linear layer per task on a shared representation.

    ``expr`` (7 or 8 classes) and ``au`` (13) return logits; ``va`` (2) returns
    ``tanh`` outputs, the label range. Works on (..., in_dim) inputs of any rank.
    """

    def __init__(self, in_dim: int, sizes: Mapping[str, int]):
        super().__init__()
        unknown = set(sizes) - set(KNOWN_TASKS)
        if unknown or not sizes:
            raise ValueError(f"heads must be a non-empty subset of {KNOWN_TASKS}, got {sorted(sizes)}")
        if "va" in sizes and sizes["va"] != 2:
            raise ValueError(f"the va head has 2 outputs (valence, arousal), got {sizes['va']}")
        self.linears = nn.ModuleDict({task: nn.Linear(in_dim, int(n)) for task, n in sizes.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for task, linear in self.linears.items():
            y = linear(x)
            out[task] = torch.tanh(y) if task == "va" else y
        return out
