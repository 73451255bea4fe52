"""Schema checks for the JSON headers of model files, which are untrusted input.

A model file may come from anywhere (a colleague, a download, a crafted file), so
nothing in its header is used before it is checked here: JSON types, value ranges,
and which encoder constructor options it may set. The options are a whitelist
(:data:`affectseq.features.encoders.SPEC_OPTIONS`): a model file can never switch on
an online download (``pretrained_online``) nor name a file to read (``init_weights``).
Every problem is one :class:`~affectseq.errors.InputError` naming the file.

Used by :mod:`affectseq.features.checkpoint` (frame models) and
:mod:`affectseq.training.checkpoints` (sequence bundles).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

from affectseq.errors import InputError

FRAME_TASKS: tuple[str, ...] = ("expr", "va", "au")
# Upper bounds keep a crafted header from making us allocate absurd tensors while building the model.
MAX_INPUT_SIZE = 1024
MAX_FEATURE_DIM = 65536
MAX_CLASSES = 256


def parse_header_json(path: str | os.PathLike[str], raw: str | None, what: str) -> dict[str, Any]:
    """The header JSON ``raw`` as a dict; InputError when absent, not JSON, or not a JSON object."""
    if raw is None:
        raise InputError(path, f"not an affectseq {what} (safetensors file without affectseq metadata)")
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        raise InputError(path, f"not an affectseq {what} (corrupt affectseq metadata)") from None
    if not isinstance(header, dict):
        raise InputError(path, f"not an affectseq {what} (affectseq metadata is a JSON "
                               f"{type(header).__name__}, not an object)")
    return header


class HeaderChecker:
    """Typed accessors over one header that raise ``InputError(path, "<key>: <problem>")``."""

    def __init__(self, path: str | os.PathLike[str], what: str, prefix: str = ""):
        self.path = path
        self.what = what
        self.prefix = prefix

    def nested(self, key: str) -> "HeaderChecker":
        """A checker for the object under ``key`` (errors name ``key.field``)."""
        return HeaderChecker(self.path, self.what, f"{self.prefix}{key}.")

    def fail(self, key: str, problem: str) -> InputError:
        """The error for a bad ``key`` (returned, so callers ``raise`` it where it happens)."""
        return InputError(self.path, f"invalid {self.what} header: {self.prefix}{key}: {problem}")

    def integer(self, data: Mapping[str, Any], key: str, lo: int, hi: int, default: Any = ...) -> int:
        """An int in ``[lo, hi]`` (bools are not ints here)."""
        value = self._get(data, key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(key, f"expected an integer in [{lo}, {hi}], got {_show(value)}")
        return value

    def number(self, data: Mapping[str, Any], key: str, lo: float, hi: float, default: Any = ...) -> float:
        """A finite number in ``[lo, hi)``."""
        value = self._get(data, key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not lo <= value < hi:
            raise self.fail(key, f"expected a number in [{lo}, {hi}), got {_show(value)}")
        return float(value)

    def boolean(self, data: Mapping[str, Any], key: str, default: Any = ...) -> bool:
        value = self._get(data, key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_show(value)}")
        return value

    def string(self, data: Mapping[str, Any], key: str, choices: tuple[str, ...] | None = None,
               default: Any = ..., max_len: int = 200) -> str:
        value = self._get(data, key, default)
        if not isinstance(value, str) or not value or len(value) > max_len:
            raise self.fail(key, f"expected a non-empty string, got {_show(value)}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def strings(self, data: Mapping[str, Any], key: str, max_items: int, choices: tuple[str, ...] | None = None,
                default: Any = ...) -> list[str]:
        """A list of distinct strings (each from ``choices`` when given)."""
        value = self._get(data, key, default)
        if not isinstance(value, list) or len(value) > max_items or \
                not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value) or len(set(value)) != len(value):
            raise self.fail(key, f"expected a list of at most {max_items} distinct strings, got {_show(value)}")
        if choices is not None and not set(value) <= set(choices):
            raise self.fail(key, f"{sorted(set(value) - set(choices))} not among {', '.join(choices)}")
        return value

    def numbers(self, data: Mapping[str, Any], key: str, lengths: tuple[int, ...], positive: bool = False) -> list[float]:
        value = self._get(data, key, ...)
        ok = isinstance(value, list) and len(value) in lengths and all(
            not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and (v > 0 or not positive)
            for v in value)
        if not ok:
            raise self.fail(key, f"expected {'/'.join(map(str, lengths))} finite{' positive' if positive else ''} "
                                 f"numbers, got {_show(value)}")
        return [float(v) for v in value]

    def mapping(self, data: Mapping[str, Any], key: str, default: Any = ...) -> dict[str, Any]:
        value = self._get(data, key, default)
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a JSON object, got {_show(value)}")
        return value

    def _get(self, data: Mapping[str, Any], key: str, default: Any) -> Any:
        if key in data:
            return data[key]
        if default is ...:
            raise self.fail(key, "missing")
        return default


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list, str, int, float, bool, type(None))) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_format(check: HeaderChecker, header: Mapping[str, Any], fmt: str, max_version: int) -> None:
    """``format`` must be ``fmt`` and ``version`` an int this affectseq reads."""
    found = header.get("format")
    if found != fmt:
        raise InputError(check.path, f"not an affectseq {check.what} (format {_show(found)})")
    version = check.integer(header, "version", 0, 10**6, default=0)
    if version > max_version:
        raise InputError(check.path, f"{check.what} format version {version} is newer than this affectseq")


def check_encoder_spec(check: HeaderChecker, spec: Any, key: str = "spec") -> dict[str, Any]:
    """An ``EncoderSpec`` dict: field types, ranges, and options from the whitelist only.

    Returns a cleaned copy (options restricted to :data:`SPEC_OPTIONS`, each type-checked);
    an option outside the whitelist -- ``pretrained_online``, ``init_weights`` or anything
    unknown -- is refused, never silently dropped, so a crafted file is noticed.
    """
    from affectseq.features.encoders import FRAMINGS, SPEC_OPTIONS

    if not isinstance(spec, dict):
        raise check.fail(key, f"expected a JSON object, got {_show(spec)}")
    fields = {"name", "input_size", "in_chans", "grayscale", "mean", "std", "feature_dim", "framing", "options"}
    unknown = sorted(set(spec) - fields)
    if unknown:
        raise check.fail(key, f"unknown encoder spec fields {unknown}")
    check = check.nested(key)
    in_chans = check.integer(spec, "in_chans", 1, 3)
    out = {
        "name": check.string(spec, "name"),
        "input_size": check.integer(spec, "input_size", 8, MAX_INPUT_SIZE),
        "in_chans": in_chans,
        "grayscale": check.boolean(spec, "grayscale"),
        "mean": check.numbers(spec, "mean", (1, in_chans)),
        "std": check.numbers(spec, "std", (1, in_chans), positive=True),
        "feature_dim": check.integer(spec, "feature_dim", 1, MAX_FEATURE_DIM),
        "framing": check.string(spec, "framing", FRAMINGS, default="abaw112"),
    }
    options = check.mapping(spec, "options", default={})
    refused = sorted(set(options) - set(SPEC_OPTIONS))
    if refused:
        raise check.fail("options", f"encoder option(s) {refused} may not come from a model file "
                                    f"(allowed: {', '.join(sorted(SPEC_OPTIONS))})")
    check = check.nested("options")
    clean: dict[str, Any] = {}
    for name, kind in SPEC_OPTIONS.items():
        if name not in options:
            continue
        if kind is bool:
            clean[name] = check.boolean(options, name)
        elif kind is int:
            clean[name] = check.integer(options, name, 8, MAX_INPUT_SIZE)
        elif kind is float:
            clean[name] = check.number(options, name, 0.0, 1.0)
        else:
            clean[name] = check.string(options, name, FRAMINGS)
    out["options"] = clean
    return out


def check_frame_header(path: str | os.PathLike[str], header: dict[str, Any], fmt: str,
                       max_version: int) -> dict[str, Any]:
    """A frame-model header checked field by field; returns it with a cleaned ``spec``."""
    check = HeaderChecker(path, "frame model")
    check_format(check, header, fmt, max_version)
    spec = check_encoder_spec(check, header.get("spec"))
    check.strings(header, "tasks", len(FRAME_TASKS), FRAME_TASKS)
    if not header["tasks"]:
        raise check.fail("tasks", "no task")
    check.strings(header, "expr_classes", MAX_CLASSES, default=[])
    check.integer(header, "num_aus", 0, MAX_CLASSES, default=0)
    check.number(header, "dropout", 0.0, 1.0, default=0.0)
    check.mapping(header, "meta", default={})
    return {**header, "spec": spec}
