"""Backbone ``transformer``: a transformer encoder over the window, causal (default) or bidirectional.

A linear projection to ``d_model``, sinusoidal positions counted from the window's first step,
``layers`` pre-norm encoder layers and a final layer norm. ``causal: true`` masks attention to
later steps, so step ``t`` sees steps ``<= t`` and the model streams (``--mode causal``, live);
``causal: false`` attends both ways (offline ``predict`` only, like a bidirectional GRU).
Gap frames are not hidden from attention: like every affectseq temporal model, the network
sees them as zero features with a 0 in the mask channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from affectseq.models.registry import register_temporal


@dataclass(frozen=True)
class TransformerArgs:
    """Arguments of ``transformer``."""

    d_model: int = 64
    heads: int = 4  # attention heads; d_model must be divisible by it
    layers: int = 2
    ff_dim: int = 128  # width of each layer's feed-forward block
    dropout: float = 0.1  # inside the layers and before the heads
    causal: bool = True  # False: bidirectional attention (not streamable)

    def __post_init__(self) -> None:
        if not 1 <= self.heads <= 64 or not 1 <= self.d_model <= 4096 or self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be in [1, 4096] and divisible by heads ({self.heads})")
        if not 1 <= self.layers <= 24 or not 1 <= self.ff_dim <= 16384:
            raise ValueError(f"layers must be in [1, 24] and ff_dim in [1, 16384], got {self.layers}, {self.ff_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """(length, dim) sine/cosine position codes (Vaswani et al., 2017)."""
    pos = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    out = torch.zeros(length, dim, device=device)
    out[:, 0::2] = torch.sin(pos * rate)
    out[:, 1::2] = torch.cos(pos * rate)[:, : dim // 2]
    return out


@register_temporal("transformer", TransformerArgs)
class TransformerBackbone(nn.Module):
    """Transformer encoder over (B, T, input_size) -> (B, T, d_model)."""

    def __init__(self, input_size: int, args: TransformerArgs):
        super().__init__()
        self.proj = nn.Linear(input_size, args.d_model)
        layer = nn.TransformerEncoderLayer(args.d_model, args.heads, args.ff_dim, args.dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, args.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(args.d_model)
        self.out_dim = args.d_model
        self.causal = args.causal
        self.receptive_field = None  # every earlier step of the window

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        steps = x.shape[1]
        h = self.proj(x) + sinusoidal_positions(steps, self.out_dim, x.device)
        attn = None
        if self.causal:
            attn = torch.triu(torch.full((steps, steps), float("-inf"), device=x.device), diagonal=1)
        return self.norm(self.encoder(h, mask=attn))
