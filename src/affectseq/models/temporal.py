"""Recurrent temporal models over per-frame features: a stack of GRU/LSTM layers and task heads.

The default mirrors Rangulov & Fahim (2020): GRU 100 -> GRU 100 -> GRU 50 over
100-frame windows, one prediction for the frame after the window (``seq2one``).

Masking: frames without a feature (gaps: no face, undecodable crop, padding) are
fed as a zero vector plus a 0 in an extra *mask channel* (1 at real frames). The
network therefore sees "nothing here" explicitly and its output never depends
on whatever values a gap row held. Packed sequences were not used because gaps
sit anywhere inside a window, not only at its end.

These are plain ``nn.Module``s: no losses, metrics or files here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

import torch
from torch import nn

from affectseq.features.heads import TaskHeads

State = list  # per layer: h (1, B, H) for GRU, (h, c) for LSTM


@dataclass(frozen=True)
class TemporalConfig:
    """Architecture of a temporal model (saved in every sequence checkpoint)."""

    cell: Literal["gru", "lstm"] = "gru"
    hidden_sizes: tuple[int, ...] = (100, 100, 50)
    bidirectional: bool = False
    dropout: float = 0.0  # between recurrent layers and before the heads
    mode: Literal["seq2one", "seq2seq"] = "seq2one"
    mask_channel: bool = True

    def __post_init__(self) -> None:
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be positive, got {self.hidden_sizes}")
        if self.cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {self.cell!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class TemporalModel(nn.Module):
    """Stacked GRU/LSTM over (B, T, D) features with a (B, T) mask; task heads on top.

    ``heads`` maps task to output size: ``{"expr": 7, "va": 2, "au": 13}`` (any subset).
    ``forward`` returns ``{task: tensor}``: (B, C) in ``seq2one`` mode, (B, T, C) in
    ``seq2seq`` mode; ``expr``/``au`` are logits, ``va`` is tanh-squashed to [-1, 1].
    """

    def __init__(self, input_dim: int, heads: Mapping[str, int], config: TemporalConfig = TemporalConfig()):
        super().__init__()
        self.input_dim = int(input_dim)
        self.config = config
        self.head_sizes = dict(heads)
        rnn_cls = nn.GRU if config.cell == "gru" else nn.LSTM
        directions = 2 if config.bidirectional else 1
        in_dim = self.input_dim + (1 if config.mask_channel else 0)
        self.rnns = nn.ModuleList()
        for hidden in config.hidden_sizes:
            self.rnns.append(rnn_cls(in_dim, hidden, batch_first=True, bidirectional=config.bidirectional))
            in_dim = hidden * directions
        self.dropout = nn.Dropout(config.dropout)
        self.out_dim = in_dim
        self.heads = TaskHeads(in_dim, self.head_sizes)

    def _inputs(self, features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            mask = torch.ones(features.shape[:-1], dtype=torch.bool, device=features.device)
        m = mask.to(features.dtype).unsqueeze(-1)
        x = features * m
        # torch.where, not only the product: a NaN/inf in a gap row must not leak (0 * nan = nan).
        x = torch.where(m > 0, x, torch.zeros_like(x))
        return torch.cat([x, m], dim=-1) if self.config.mask_channel else x

    def encode(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-frame outputs of the recurrent stack, (B, T, out_dim)."""
        x = self._inputs(features, mask)
        for i, rnn in enumerate(self.rnns):
            x, _ = rnn(x)
            if i < len(self.rnns) - 1:
                x = self.dropout(x)
        return x

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        seq = self.encode(features, mask)
        if self.config.mode == "seq2one":
            if self.config.bidirectional:
                half = seq.shape[-1] // 2
                # Forward direction after the last frame, backward direction after the first.
                seq = torch.cat([seq[:, -1, :half], seq[:, 0, half:]], dim=-1)
            else:
                seq = seq[:, -1]
        return self.heads(self.dropout(seq))

    # -- streaming (live use): one frame at a time, hidden state carried by the caller ----------
    def init_state(self, batch_size: int = 1, device: torch.device | str | None = None) -> State:
        """Zero hidden state for :meth:`step` (unidirectional models only)."""
        self._check_streamable()
        state: State = []
        for rnn in self.rnns:
            h = torch.zeros(1, batch_size, rnn.hidden_size, device=device)
            state.append((h, torch.zeros_like(h)) if self.config.cell == "lstm" else h)
        return state

    @torch.no_grad()
    def step(
        self, features: torch.Tensor, mask: torch.Tensor | None, state: State
    ) -> tuple[dict[str, torch.Tensor], State]:
        """Advance by one frame: ``features`` (B, D), ``mask`` (B,) -> (``{task: (B, C)}``, new state).

        Running ``step`` over frames 0..T-1 from :meth:`init_state` gives the same
        outputs as ``forward`` on the (B, T, D) window (seq2one: the last one).
        """
        self._check_streamable()
        x = self._inputs(features.unsqueeze(1), None if mask is None else mask.unsqueeze(1))
        new_state: State = []
        for rnn, layer_state in zip(self.rnns, state):
            x, layer_state = rnn(x, layer_state)
            new_state.append(layer_state)
        return self.heads(x[:, 0]), new_state

    def _check_streamable(self) -> None:
        if self.config.bidirectional:
            raise ValueError("a bidirectional model needs the whole window; it cannot stream frame by frame")
