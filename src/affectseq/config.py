"""Typed, frozen configuration objects loaded from YAML with ``key.sub=value`` overrides.

Every configurable stage defines a frozen dataclass with documented defaults.
:func:`load_config` builds one from (in increasing priority) the defaults, a
YAML file and command-line overrides, checking names and types, so a typo is
an error rather than a silently ignored key. :func:`config_to_dict` gives the
resolved values that run directories save beside their results.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import yaml

from affectseq.errors import ConfigError

C = TypeVar("C")


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


def save_config(config: Any, path: str | Path) -> None:
    """Write the resolved configuration as YAML (atomically)."""
    from affectseq.utils.atomic import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


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


def _build(cls: type[C], values: Mapping[str, Any], prefix: str) -> C:
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
