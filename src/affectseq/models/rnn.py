"""Recurrent backbones ``gru`` and ``lstm``: a stack of GRU/LSTM layers (the paper's GRU 100 -> 100 -> 50).

Registered twice, once per cell, with the same arguments (:class:`RecurrentArgs`).
Bidirectional stacks are not causal; a ``seq2one`` summary of one reads the forward
direction after the last frame and the backward direction after the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from affectseq.models.registry import register_temporal

State = list  # per layer: h (1, B, H) for GRU, (h, c) for LSTM


@dataclass(frozen=True)
class RecurrentArgs:
    """Arguments of ``gru`` / ``lstm``."""

    hidden_sizes: tuple[int, ...] = (100, 100, 50)  # one recurrent layer per entry
    bidirectional: bool = False
    dropout: float = 0.0  # between recurrent layers and before the heads

    def __post_init__(self) -> None:
        if not 0 < len(self.hidden_sizes) <= 16 or not all(0 < h <= 8192 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be 1 to 16 sizes in [1, 8192], got {list(self.hidden_sizes)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class RecurrentStack(nn.Module):
    """Stacked GRU or LSTM layers over (B, T, input_size)."""

    def __init__(self, input_size: int, args: RecurrentArgs, cell: str = "gru"):
        super().__init__()
        self.cell = cell
        self.bidirectional = args.bidirectional
        rnn_cls = nn.GRU if cell == "gru" else nn.LSTM
        directions = 2 if args.bidirectional else 1
        self.rnns = nn.ModuleList()
        in_dim = input_size
        for hidden in args.hidden_sizes:
            self.rnns.append(rnn_cls(in_dim, hidden, batch_first=True, bidirectional=args.bidirectional))
            in_dim = hidden * directions
        self.dropout = nn.Dropout(args.dropout)
        self.out_dim = in_dim
        self.causal = not args.bidirectional

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for i, rnn in enumerate(self.rnns):
            x, _ = rnn(x)
            if i < len(self.rnns) - 1:
                x = self.dropout(x)
        return x

    def last(self, seq: torch.Tensor) -> torch.Tensor:
        if self.bidirectional:
            half = seq.shape[-1] // 2
            # Forward direction after the last frame, backward direction after the first.
            return torch.cat([seq[:, -1, :half], seq[:, 0, half:]], dim=-1)
        return seq[:, -1]

    def init_state(self, batch_size: int = 1, device: torch.device | str | None = None) -> State:
        state: State = []
        for rnn in self.rnns:
            h = torch.zeros(1, batch_size, rnn.hidden_size, device=device)
            state.append((h, torch.zeros_like(h)) if self.cell == "lstm" else h)
        return state

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        new_state: State = []
        for rnn, layer_state in zip(self.rnns, state):
            x, layer_state = rnn(x, layer_state)
            new_state.append(layer_state)
        return x[:, 0], new_state


def _recurrent(cell: str) -> Any:
    build = partial(RecurrentStack, cell=cell)
    build.__qualname__ = f"RecurrentStack[{cell}]"  # type: ignore[attr-defined]
    return build


register_temporal("gru", RecurrentArgs)(_recurrent("gru"))
register_temporal("lstm", RecurrentArgs)(_recurrent("lstm"))
