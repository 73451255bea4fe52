"""The temporal-model registry: each architecture by name, with its own arguments (as timm's ``register_model``).

An architecture is a *backbone*: a ``nn.Module`` over per-frame inputs that returns per-step
features. :class:`~affectseq.models.temporal.TemporalModel` wraps any registered backbone with
the parts every temporal model shares (masking and the mask channel, dropout before the heads,
the task heads, seq2one/seq2seq outputs, streaming), so a new architecture is one module::

    @dataclass(frozen=True)
    class MyArgs:                 # the architecture's own arguments, with defaults
        width: int = 64
        dropout: float = 0.0      # optional; also the dropout before the heads

    @register_temporal("mine", MyArgs)
    class MyBackbone(nn.Module):
        def __init__(self, input_size: int, args: MyArgs): ...   # input_size: features (+1 mask channel)
        out_dim: int              # features per step
        causal: bool              # step t sees only steps <= t
        def forward(self, x, mask): ...   # (B, T, input_size) float, (B, T) bool -> (B, T, out_dim)

Optional: ``last(seq) -> (B, out_dim)``, the summary a ``seq2one`` model's heads read (default: the
last step); ``init_state(batch_size, device)`` / ``step(x (B, 1, input_size), state) -> ((B, out_dim),
state)`` for O(1) streaming (a causal backbone without them streams by re-running ``forward`` on
its last ``receptive_field`` steps, or on all steps when that attribute is None or absent).

Configs name the architecture and its arguments flat (``model.arch=tcn model.kernel_size=5``),
bundles record both (header ``model_config``: ``arch``, ``args``, ``mask_channel``), and
:func:`arch_args` checks them before anything is built. Architectures outside affectseq register
by being imported, or through the entry-point group ``affectseq.temporal_models`` (loaded when an
unknown name is asked for).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from affectseq.config import config_to_dict, load_config
from affectseq.errors import ConfigError

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "affectseq.temporal_models"


@dataclass(frozen=True)
class TemporalArch:
    """One registered architecture: how to build its backbone and which arguments it takes."""

    name: str
    build: Callable[[int, Any], Any]  # (input_size, args) -> backbone module
    args_type: type  # frozen dataclass of the architecture's own arguments, with defaults

    def parse_args(self, values: Mapping[str, Any], prefix: str = "model.") -> Any:
        """``values`` checked against the argument dataclass (names, types, its own checks); ConfigError."""
        try:
            return load_config(self.args_type, overrides=dict(values))
        except ConfigError as err:
            raise ConfigError(f"{prefix}arch={self.name}: {err}") from None

    def default_args(self) -> dict[str, Any]:
        return config_to_dict(self.args_type())


_ARCHS: dict[str, TemporalArch] = {}
_ENTRY_POINTS_LOADED = False


def register_temporal(name: str, args_type: type) -> Callable[[Callable[[int, Any], Any]], Callable[[int, Any], Any]]:
    """Decorator registering a backbone class (or factory) ``build(input_size, args)`` under ``name``.

    Registering a different backbone under a name already taken is an error; re-registering the
    same one (a module imported twice) is not.
    """
    if not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"temporal architecture names are lowercase letters, digits and _, got {name!r}")

    def decorator(build: Callable[[int, Any], Any]) -> Callable[[int, Any], Any]:
        known = _ARCHS.get(name)
        if known is not None and getattr(known.build, "__qualname__", None) != getattr(build, "__qualname__", None):
            raise ValueError(f"temporal architecture {name!r} is already registered ({known.build!r})")
        _ARCHS[name] = TemporalArch(name, build, args_type)
        return build

    return decorator


def registered_archs() -> tuple[str, ...]:
    """Names of the registered architectures, sorted."""
    return tuple(sorted(_ARCHS))


def get_arch(name: str) -> TemporalArch:
    """The architecture ``name``; ConfigError listing the registered ones otherwise."""
    if name not in _ARCHS:
        _load_entry_points()
    if name not in _ARCHS:
        raise ConfigError(f"unknown temporal architecture {name!r}; registered: {', '.join(registered_archs())} "
                          f"(an architecture from another package is registered by importing it, or through "
                          f"the entry-point group {ENTRY_POINT_GROUP})")
    return _ARCHS[name]


def arch_args(name: str, values: Mapping[str, Any], prefix: str = "model.") -> dict[str, Any]:
    """The complete, checked arguments of architecture ``name`` (its defaults + ``values``), as plain values."""
    return config_to_dict(get_arch(name).parse_args(values, prefix))


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            point.load()  # registers by importing
        except Exception as err:  # a broken plug-in must not break the built-in architectures
            log.warning("temporal architecture plug-in %s could not be loaded: %s", point.name, err)
