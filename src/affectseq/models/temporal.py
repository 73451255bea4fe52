"""Temporal models over per-frame features: a registered backbone (GRU, LSTM, TCN, transformer...) and task heads.

The default mirrors Rangulov & Fahim (2020): GRU 100 -> GRU 100 -> GRU 50 over
100-frame windows, one prediction for the frame after the window (``seq2one``).
The backbone is chosen by name from :mod:`affectseq.models.registry` (``TemporalConfig.arch``,
its own arguments in ``TemporalConfig.args``); everything else lives here, once for all of them.

Masking: frames without a feature (gaps: no face, undecodable crop, padding) are
fed as a zero vector plus a 0 in an extra *mask channel* (1 at real frames). The
network therefore sees "nothing here" explicitly and its output never depends
on whatever values a gap row held. Packed sequences were not used because gaps
sit anywhere inside a window, not only at its end.

Outputs: ``seq2seq`` puts the heads on every step; ``seq2one`` on the backbone's summary of the
window (its last step, unless the backbone says otherwise); ``clip`` on the last step that holds a
frame (one output per clip).

These are plain ``nn.Module``s: no losses, metrics or files here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from affectseq.errors import ConfigError
from affectseq.features.heads import TaskHeads
from affectseq.models.registry import arch_args, get_arch

MODES: tuple[str, ...] = ("seq2one", "seq2seq", "clip")
_LEGACY_RNN_KEYS = ("hidden_sizes", "bidirectional", "dropout")


@dataclass(frozen=True, init=False)
class TemporalConfig:
    """Architecture of a temporal model (saved in every sequence bundle's header).

    ``arch``: a registered architecture; ``args``: its own arguments (missing ones take the
    architecture's defaults; the stored value is complete and checked). The arguments may also be
    given flat: ``TemporalConfig(arch="tcn", kernel_size=5)``; the GRU/LSTM spelling of older
    code still works: ``TemporalConfig(cell="lstm", hidden_sizes=(64,))``.
    """

    arch: str = "gru"
    args: Mapping[str, Any] = field(default_factory=dict)
    mode: str = "seq2one"
    mask_channel: bool = True

    def __init__(self, arch: str | None = None, args: Mapping[str, Any] | None = None, mode: str = "seq2one",
                 mask_channel: bool = True, cell: str | None = None, **flat_args: Any):
        if cell is not None and arch is not None and cell != arch:
            raise ConfigError(f"cell={cell!r} and arch={arch!r} disagree (cell is the older name of arch)")
        name = arch or cell or "gru"
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        try:
            resolved = arch_args(name, {**dict(args or {}), **flat_args}, prefix="")
        except ConfigError as err:
            raise ValueError(str(err)) from None
        object.__setattr__(self, "arch", name)
        object.__setattr__(self, "args", resolved)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "mask_channel", bool(mask_channel))

    def header(self) -> dict[str, Any]:
        """The ``model_config`` a bundle header records (``mode`` is stored once, beside it)."""
        return {"arch": self.arch, "args": dict(self.args), "mask_channel": self.mask_channel}


class TemporalModel(nn.Module):
    """A registered backbone over (B, T, D) features with a (B, T) mask; task heads on top.

    ``heads`` maps task to output size: ``{"expr": 7, "va": 2, "au": 13}`` (any subset).
    ``forward`` returns ``{task: tensor}``: (B, C) in ``seq2one``/``clip`` mode, (B, T, C) in
    ``seq2seq`` mode; ``expr``/``au`` are logits, ``va`` is tanh-squashed to [-1, 1].
    """

    def __init__(self, input_dim: int, heads: Mapping[str, int], config: TemporalConfig = TemporalConfig()):
        super().__init__()
        self.input_dim = int(input_dim)
        self.config = config
        self.head_sizes = dict(heads)
        arch = get_arch(config.arch)
        args = arch.parse_args(config.args)
        self.backbone = arch.build(self.input_dim + (1 if config.mask_channel else 0), args)
        self.dropout = nn.Dropout(float(getattr(args, "dropout", 0.0)))
        self.out_dim = int(self.backbone.out_dim)
        self.heads = TaskHeads(self.out_dim, self.head_sizes)
        # Bundles written before the registry keep the recurrent layers at the top level (``rnns.*``).
        self._register_load_state_dict_pre_hook(_prefix_backbone_keys)

    @property
    def causal(self) -> bool:
        """True when step ``t``'s output depends on steps ``<= t`` only (then it can stream)."""
        return bool(getattr(self.backbone, "causal", False))

    def describe(self) -> str:
        """A short human description, e.g. ``GRU hidden_sizes=100-100-50 seq2one``."""
        parts = [self.config.arch.upper()]
        for key, value in self.config.args.items():
            text = "-".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            parts.append(f"{key}={text}")
        return " ".join(parts + [self.config.mode])

    def _inputs(self, features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            mask = torch.ones(features.shape[:-1], dtype=torch.bool, device=features.device)
        m = mask.to(features.dtype).unsqueeze(-1)
        x = features * m
        # torch.where, not only the product: a NaN/inf in a gap row must not leak (0 * nan = nan).
        x = torch.where(m > 0, x, torch.zeros_like(x))
        return torch.cat([x, m], dim=-1) if self.config.mask_channel else x

    def encode(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-frame outputs of the backbone, (B, T, out_dim)."""
        if mask is None:
            mask = torch.ones(features.shape[:-1], dtype=torch.bool, device=features.device)
        return self.backbone(self._inputs(features, mask), mask)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        seq = self.encode(features, mask)
        if self.config.mode == "seq2one":
            last = getattr(self.backbone, "last", None)
            seq = last(seq) if last is not None else seq[:, -1]
        elif self.config.mode == "clip":
            seq = _last_valid(seq, mask)
        return self.heads(self.dropout(seq))

    # -- streaming (live use): one frame at a time, state carried by the caller ------------------
    def init_state(self, batch_size: int = 1, device: torch.device | str | None = None) -> Any:
        """Empty state for :meth:`step` (causal models only)."""
        self._check_streamable()
        if hasattr(self.backbone, "step"):
            return self.backbone.init_state(batch_size, device)
        return None  # buffered: the inputs seen so far (see _buffered_step)

    @torch.no_grad()
    def step(self, features: torch.Tensor, mask: torch.Tensor | None, state: Any
             ) -> tuple[dict[str, torch.Tensor], Any]:
        """Advance by one frame: ``features`` (B, D), ``mask`` (B,) -> (``{task: (B, C)}``, new state).

        Running ``step`` over frames 0..T-1 from :meth:`init_state` gives the same
        outputs as ``forward`` on the (B, T, D) window in ``seq2seq`` mode (seq2one: its last one).
        """
        self._check_streamable()
        x = self._inputs(features.unsqueeze(1), None if mask is None else mask.unsqueeze(1))
        if hasattr(self.backbone, "step"):
            h, state = self.backbone.step(x, state)
        else:
            h, state = self._buffered_step(x, state)
        return self.heads(h), state

    def _buffered_step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """A causal backbone without its own ``step``: ``forward`` over the last ``receptive_field`` inputs."""
        seen = x if state is None else torch.cat([state, x], dim=1)
        keep = getattr(self.backbone, "receptive_field", None)
        if keep is not None:
            seen = seen[:, -int(keep):]
        mask = seen[..., -1] > 0 if self.config.mask_channel else torch.ones(seen.shape[:2], dtype=torch.bool)
        return self.backbone(seen, mask)[:, -1], seen

    def _check_streamable(self) -> None:
        if not self.causal:
            raise ValueError(f"a non-causal (e.g. bidirectional) {self.config.arch} model needs the whole window; "
                             "it cannot stream frame by frame")


def _last_valid(seq: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Each sequence's output at its last step that holds a frame (the last step when none does)."""
    if mask is None:
        return seq[:, -1]
    steps = torch.arange(seq.shape[1], device=seq.device).expand(mask.shape)
    idx = torch.where(mask, steps, torch.zeros_like(steps)).amax(dim=1)
    idx = torch.where(mask.any(dim=1), idx, torch.full_like(idx, seq.shape[1] - 1))
    return seq[torch.arange(seq.shape[0], device=seq.device), idx]


def _prefix_backbone_keys(state_dict: dict[str, Any], prefix: str, *_args: Any) -> None:
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rest = key[len(prefix):]
        if not rest.startswith(("backbone.", "heads.")):
            state_dict[prefix + "backbone." + rest] = state_dict.pop(key)
