"""Backbone ``tcn``: a temporal convolutional network of dilated causal convolutions (Bai et al., 2018).

Residual blocks, block ``i`` dilated by ``2**i``: two causal convolutions of ``kernel_size`` taps
(left-padded, so step ``t`` sees steps ``<= t`` only), ReLU and dropout, plus the block's input
(a 1x1 convolution where the width changes). The receptive field is
``1 + 2 * (kernel_size - 1) * (2**blocks - 1)`` steps (4 blocks of kernel 3: 61). Causal, so it
streams: :class:`~affectseq.models.temporal.TemporalModel` re-runs it on the last
``receptive_field`` inputs, which gives exactly the full forward's output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from affectseq.models.registry import register_temporal


@dataclass(frozen=True)
class TCNArgs:
    """Arguments of ``tcn``."""

    channels: tuple[int, ...] = (64, 64, 64, 64)  # one residual block per entry; block i dilated by 2**i
    kernel_size: int = 3
    dropout: float = 0.1  # inside the blocks and before the heads

    def __post_init__(self) -> None:
        if not 0 < len(self.channels) <= 12 or not all(0 < c <= 4096 for c in self.channels):
            raise ValueError(f"channels must be 1 to 12 widths in [1, 4096], got {list(self.channels)}")
        if not 2 <= self.kernel_size <= 16:
            raise ValueError(f"kernel_size must be in [2, 16], got {self.kernel_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class _CausalConv(nn.Conv1d):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int):
        super().__init__(in_ch, out_ch, kernel_size, dilation=dilation)
        self.left = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class _Block(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.conv1 = _CausalConv(in_ch, out_ch, kernel_size, dilation)
        self.conv2 = _CausalConv(out_ch, out_ch, kernel_size, dilation)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dropout(F.relu(self.conv1(x)))
        y = self.dropout(F.relu(self.conv2(y)))
        return F.relu(y + self.skip(x))


@register_temporal("tcn", TCNArgs)
class TCN(nn.Module):
    """Dilated causal convolutions over (B, T, input_size) -> (B, T, channels[-1])."""

    causal = True

    def __init__(self, input_size: int, args: TCNArgs):
        super().__init__()
        blocks, in_ch = [], input_size
        for i, width in enumerate(args.channels):
            blocks.append(_Block(in_ch, width, args.kernel_size, 2 ** i, args.dropout))
            in_ch = width
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = in_ch
        self.receptive_field = 1 + 2 * (args.kernel_size - 1) * (2 ** len(args.channels) - 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.blocks(x.transpose(1, 2)).transpose(1, 2)
