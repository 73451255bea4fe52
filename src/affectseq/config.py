"""Typed, frozen configuration objects loaded from YAML with ``key.sub=value`` overrides.

Every configurable stage defines a frozen dataclass with documented defaults.
:func:`load_config` builds one from (in increasing priority) the defaults, a
YAML file and command-line overrides, checking names and types, so a typo is
an error rather than a silently ignored key. :func:`config_to_dict` gives the
resolved values that run directories save beside their results
(:func:`affectseq.utils.rundir.save_config` writes them).

Two hooks for configs whose shape is not a fixed list of fields:

* a dataclass with a ``RENAMED`` class attribute (``{"old_name": "new_name"}``) accepts its
  options' older names (a deprecation warning once per name; giving both is an error);
* a dataclass with a ``from_config(values, prefix)`` classmethod builds itself from its mapping
  (e.g. a temporal model's architecture-specific arguments, checked against the chosen architecture).
"""

from __future__ import annotations

import dataclasses
import logging
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import yaml

from affectseq.errors import ConfigError

C = TypeVar("C")
log = logging.getLogger(__name__)
_WARNED: set[str] = set()


def config_to_dict(config: Any) -> dict[str, Any]:
    """Resolved configuration as plain YAML/JSON-able values (tuples become lists)."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    return plain(config)


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=[1, 2]"]`` into a nested dict; values are parsed as YAML scalars/lists."""
    nested: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else None
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> C:
    """Build a ``cls`` instance from defaults, an optional YAML file and overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        values = _merge(values, read_yaml_mapping(path))
    extra = parse_overrides(overrides) if not isinstance(overrides, Mapping) else dict(overrides)
    values = _merge(values, extra)
    return _build(cls, values, prefix="")


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file that must hold a mapping; ConfigError naming the file otherwise."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of option names to values")
    return loaded


def merge_mappings(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` into a copy of ``base`` (nested mappings merge, other values replace)."""
    return _merge(dict(base), extra)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def renamed_options(cls: type, values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``values`` with the older option names of ``cls.RENAMED`` replaced by the current ones (warned once each)."""
    renamed: Mapping[str, str] = getattr(cls, "RENAMED", {})
    out = dict(values)
    for old, new in renamed.items():
        if old not in out:
            continue
        if new in out and out[new] != out[old]:
            raise ConfigError(f"options {prefix}{old} (the older name) and {prefix}{new} are both given; use {prefix}{new}")
        if old not in _WARNED:
            _WARNED.add(old)
            log.warning("option %s%s is deprecated; it is now called %s%s", prefix, old, prefix, new)
        out[new] = out.pop(old)
    return out


def _build(cls: type[C], values: Mapping[str, Any], prefix: str) -> C:
    if hasattr(cls, "from_config"):
        return cls.from_config(values, prefix)  # type: ignore[attr-defined]
    values = renamed_options(cls, values, prefix)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(prefix + u for u in unknown)} for {cls.__name__}; "
            f"valid: {', '.join(prefix + f for f in fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        kwargs[name] = _coerce(hints[name], value, prefix + name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{cls.__name__}: {err}") from None


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, Mapping):
            return _build(hint, value, prefix=key + ".")
        raise ConfigError(f"option {key} must be a mapping")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"option {key}={value!r} does not match {hint}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"option {key}={value!r}; choose one of {', '.join(map(repr, args))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            value = [value]
        inner = args[0] if args else Any
        items = [_coerce(inner, v, key) for v in value] if inner is not Any and inner is not Ellipsis else list(value)
        return tuple(items) if origin is tuple else items
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"option {key} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"option {key} must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"option {key} must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        return str(value)
    if hint is Path:
        return Path(value)
    return value
