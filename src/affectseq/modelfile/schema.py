"""The header schema of every affectseq model file, checked field by field: headers are untrusted input.

A model file may come from anywhere (a colleague, a download, a crafted file), so
nothing in its header is used before it is checked here: JSON types, value ranges,
which fields exist, and which encoder constructor options it may set. The options are a
whitelist (:data:`SPEC_OPTIONS`, here because the schema decides what a file may set; the encoders
import it): a model file can never
switch on an online download (``pretrained_online``) nor name a file to read
(``init_weights``). Every problem is one :class:`~affectseq.errors.InputError` naming the file.

One schema for both kinds (version 2; see :mod:`affectseq.modelfile`): the common fields
:data:`COMMON_FIELDS` plus :data:`FRAME_FIELDS` or :data:`SEQUENCE_FIELDS`; a field outside
them is refused. Version-1 files (written before the schema was unified) are mapped onto
version 2 by :mod:`affectseq.modelfile.legacy` first.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any, Mapping

from affectseq.errors import InputError

FRAME_TASKS: tuple[str, ...] = ("expr", "va", "au")
# Upper bounds keep a crafted header from making us allocate absurd tensors while building the model.
MAX_INPUT_SIZE = 1024
MAX_FEATURE_DIM = 65536
MAX_CLASSES = 256
# Crop framings an encoder may expect (see affectseq.faces.align_face) and the encoder constructor options a
# model file may set, with their types: never a path to read (init_weights) nor a download (pretrained_online).
FRAMINGS: tuple[str, ...] = ("abaw112", "fer2013", "as_given")
SPEC_OPTIONS: dict[str, type] = {"input_size": int, "grayscale": bool, "framing": str, "head_dropout": float}


MAX_HEADER_CHARS = 1 << 20   # real headers are a few KB; a bigger one is refused before parsing
MAX_HEADER_DEPTH = 32        # real headers nest 4 deep; 5000 levels made json.loads raise RecursionError
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _nesting_depth(raw: str) -> int:
    """The deepest ``[``/``{`` nesting of JSON text (brackets inside strings ignored), without recursion."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', raw)):
        depth += 1 if match.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 30:  # Python refuses past 4300 digits anyway, with an unhelpful message
        raise ValueError(f"integer of {len(text)} digits is out of range")
    return int(text)


def _no_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name}")


def parse_header_json(path: str | os.PathLike[str], raw: str | None, what: str) -> dict[str, Any]:
    """The header JSON ``raw`` as a dict; InputError when absent, not JSON, or not a JSON object.

    Bounded before parsing (size, nesting depth) and while parsing: ``NaN``/``Infinity``
    and numbers that overflow a float are refused, as is an integer too long for Python.
    """
    if raw is None:
        raise InputError(path, f"not an affectseq {what} (safetensors file without affectseq metadata)")
    if not isinstance(raw, str):
        raise InputError(path, f"not an affectseq {what} (corrupt affectseq metadata)")
    if len(raw) > MAX_HEADER_CHARS:
        raise InputError(path, f"not an affectseq {what} (affectseq metadata of {len(raw)} characters; "
                               f"at most {MAX_HEADER_CHARS})")
    if _nesting_depth(raw) > MAX_HEADER_DEPTH:
        raise InputError(path, f"not an affectseq {what} (affectseq metadata nested deeper than "
                               f"{MAX_HEADER_DEPTH} levels)")
    try:
        header = json.loads(raw, parse_float=_finite_float, parse_int=_bounded_int, parse_constant=_no_constant)
    except (ValueError, TypeError, RecursionError) as err:  # JSONDecodeError is a ValueError
        detail = f": {err}" if not isinstance(err, json.JSONDecodeError) and str(err) else ""
        raise InputError(path, f"not an affectseq {what} (corrupt affectseq metadata{detail[:120]})") from None
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




# -- the one header schema (version 2) -------------------------------------------------------------------------
FRAME_FORMAT = "affectseq.frame_model"
SEQUENCE_FORMAT = "affectseq.sequence_model"
SCHEMA_VERSION = 2
MODES: tuple[str, ...] = ("seq2one", "seq2seq")
VA_RANGE: tuple[float, float] = (-1.0, 1.0)  # VA heads end in tanh
MAX_FPS = 1000.0
# Side in pixels of the aligned face crops of each framing (affectseq.faces.align_face makes 112-px abaw112
# crops; FER2013 images are 48 px); None: whatever the images were.
FACE_CROP_SIZES: dict[str, int | None] = {"abaw112": 112, "fer2013": 48, "as_given": None}

COMMON_FIELDS: tuple[str, ...] = (
    "format", "version", "affectseq_version",  # which kind, which schema, which affectseq wrote it
    "encoder",  # the frame encoder's data contract (EncoderSpec); null: external features (sequence only)
    "face",  # {"framing", "crop_size"}: how the faces it expects are cropped
    "tasks", "expr_classes", "va_range", "meta",  # meta: free training information (metrics, command)
)
FRAME_FIELDS: tuple[str, ...] = ("num_aus", "dropout")
# Optional frame fields (absent in older files): the EXPR calibration temperature.
OPTIONAL_FRAME_FIELDS: tuple[str, ...] = ("expr_temperature",)
TEMPERATURE_RANGE: tuple[float, float] = (0.05, 20.0)
SEQUENCE_FIELDS: tuple[str, ...] = (
    "input_dim", "heads", "model_config",  # the temporal network: {arch, args, mask_channel}
    "mode", "window",  # seq2one/seq2seq over windows of `window` frames...
    "fps", "window_sec",  # ...of features at `fps` (null: unknown), so `window_sec` seconds
    "frame_model",  # null, or {"sha256", "name", "embedded"}: the frame model that made the features
)
_TEMPORAL_KEYS = {"arch", "args", "mask_channel"}
_RNN_KEYS = {"cell", "hidden_sizes", "bidirectional", "dropout", "mode", "mask_channel"}  # before the registry


def face_of(encoder: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``face`` field for an encoder spec dict: its framing and that framing's crop size."""
    if not encoder:
        return None
    framing = str(encoder.get("framing", "abaw112"))
    return {"framing": framing, "crop_size": FACE_CROP_SIZES.get(framing)}


def check_header(check: HeaderChecker, header: dict[str, Any], fmt: str, legacy: bool = False) -> dict[str, Any]:
    """A version-2 header of kind ``fmt`` checked against the schema; returns it with the encoder spec cleaned.

    ``legacy``: the header was upgraded from version 1 (its ``frame_model`` may carry ``v1_header``).
    Raises one-line ``InputError``.
    """
    path, what = check.path, check.what
    required = set(COMMON_FIELDS) | set(FRAME_FIELDS if fmt == FRAME_FORMAT else SEQUENCE_FIELDS)
    allowed = required | set(OPTIONAL_FRAME_FIELDS if fmt == FRAME_FORMAT else ())
    unknown = sorted(set(header) - allowed)
    if unknown:
        raise InputError(path, f"invalid {what} header: unknown fields {unknown}")
    missing = sorted(required - set(header))
    if missing:
        raise InputError(path, f"invalid {what} header: missing fields {missing}")
    out = _check_common(check, header, optional_encoder=fmt == SEQUENCE_FORMAT)
    if fmt == FRAME_FORMAT:
        check.integer(header, "num_aus", 0, MAX_CLASSES)
        check.number(header, "dropout", 0.0, 1.0)
        if "expr_temperature" in header:
            check.number(header, "expr_temperature", *TEMPERATURE_RANGE)
    else:
        _check_sequence_fields(check, out, legacy)
    return out


def _check_common(check: HeaderChecker, header: dict[str, Any], optional_encoder: bool) -> dict[str, Any]:
    if header["affectseq_version"] is not None:
        check.string(header, "affectseq_version", max_len=64)
    encoder = header["encoder"]
    if encoder is not None or not optional_encoder:
        encoder = check_encoder_spec(check, encoder, "encoder")
    face = header["face"]
    if encoder is None:
        if face is not None:
            raise check.fail("face", "expected null without an encoder")
    else:
        face = check.mapping(header, "face")
        inner = check.nested("face")
        if sorted(face) != ["crop_size", "framing"]:
            raise check.fail("face", f"expected the fields crop_size and framing, got {sorted(face)}")
        if inner.string(face, "framing") != encoder["framing"]:
            raise inner.fail("framing", f"{face['framing']!r} differs from encoder.framing {encoder['framing']!r}")
        if face["crop_size"] is not None:
            inner.integer(face, "crop_size", 8, MAX_INPUT_SIZE)
    tasks = check.strings(header, "tasks", len(FRAME_TASKS), FRAME_TASKS)
    if not tasks:
        raise check.fail("tasks", "no task")
    check.strings(header, "expr_classes", MAX_CLASSES)
    va_range = check.numbers(header, "va_range", (2,))
    if not va_range[0] < va_range[1]:
        raise check.fail("va_range", f"expected [low, high] with low < high, got {va_range}")
    check.mapping(header, "meta")
    return {**header, "encoder": encoder}


def _optional_number(check: HeaderChecker, header: Mapping[str, Any], key: str, lo: float, hi: float) -> None:
    if header[key] is not None:
        check.number(header, key, lo, hi)


def _check_sequence_fields(check: HeaderChecker, header: dict[str, Any], legacy: bool) -> None:
    """The temporal network, its window, the features' frame rate and the frame-model reference."""
    check.integer(header, "input_dim", 1, MAX_FEATURE_DIM)
    heads = check.mapping(header, "heads")
    if not heads or not set(heads) <= set(FRAME_TASKS):
        raise check.fail("heads", f"expected tasks among {', '.join(FRAME_TASKS)}, got {sorted(heads)}")
    for task in heads:
        check.nested("heads").integer(heads, task, 1, MAX_CLASSES)
    mode = check.string(header, "mode", MODES + ("clip",))  # clip: one output per clip (affectseq.sequences.clips)
    header["model_config"] = _check_temporal_config(check, check.mapping(header, "model_config"), mode)
    window = check.integer(header, "window", 1, 1_000_000)
    _optional_number(check, header, "fps", 1e-3, MAX_FPS)
    _optional_number(check, header, "window_sec", 0.0, 1e7)
    if header["fps"] is not None and header["window_sec"] is not None \
            and not math.isclose(header["window_sec"], window / header["fps"], rel_tol=1e-6):
        raise check.fail("window_sec", f"{header['window_sec']} is not window / fps = {window / header['fps']:g}")
    if header["frame_model"] is not None:
        _check_frame_ref(check, header["frame_model"], legacy)


def _check_temporal_config(check: HeaderChecker, config: dict[str, Any], mode: str) -> dict[str, Any]:
    """``model_config`` = ``{arch, args, mask_channel}``, checked for shape only: which ``arch`` names exist and
    what their ``args`` mean is the registry's (``affectseq.models.registry``), checked before anything is built.

    Older bundles spelled a GRU/LSTM as ``{cell, hidden_sizes, bidirectional, dropout, mode, mask_channel}``;
    they are read in the new form (their ``mode`` must equal the header's, which is now the only one).
    """
    if "arch" not in config:
        config = _upgrade_rnn_config(check, config, mode)
    unknown = sorted(set(config) - _TEMPORAL_KEYS)
    if unknown:
        raise check.fail("model_config", f"unknown fields {unknown}")
    inner = check.nested("model_config")
    arch = inner.string(config, "arch", max_len=64)
    if not all(c.islower() or c.isdigit() or c == "_" for c in arch):
        raise inner.fail("arch", f"expected a name of lowercase letters, digits and _, got {_show(arch)}")
    args = inner.mapping(config, "args")
    if len(args) > 64:
        raise inner.fail("args", f"expected at most 64 arguments, got {len(args)}")
    for key, value in args.items():
        if not _plain_arg(value):
            raise inner.nested("args").fail(key, f"expected a number, true/false, a short string or a list of "
                                                 f"at most 64 numbers, got {_show(value)}")
    return {"arch": arch, "args": dict(args), "mask_channel": inner.boolean(config, "mask_channel", default=True)}


def _plain_arg(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(value) and abs(value) <= 1e9
    if isinstance(value, str):
        return len(value) <= 200
    return isinstance(value, list) and len(value) <= 64 and all(
        not isinstance(v, (list, dict)) and _plain_arg(v) for v in value)


def _upgrade_rnn_config(check: HeaderChecker, config: dict[str, Any], mode: str) -> dict[str, Any]:
    """A GRU/LSTM ``model_config`` of older bundles in the ``{arch, args, mask_channel}`` form."""
    unknown = sorted(set(config) - _RNN_KEYS)
    if unknown:
        raise check.fail("model_config", f"unknown fields {unknown}")
    inner = check.nested("model_config")
    if inner.string(config, "mode", MODES, default=mode) != mode:
        raise inner.fail("mode", f"{config['mode']!r} differs from the header's mode {mode!r}")
    args = {key: config[key] for key in ("hidden_sizes", "bidirectional", "dropout") if key in config}
    return {"arch": inner.string(config, "cell", ("gru", "lstm"), default="gru"), "args": args,
            "mask_channel": config.get("mask_channel", True)}


def _check_frame_ref(check: HeaderChecker, ref: Any, legacy: bool) -> None:
    """``frame_model``: sha256 + a bare file *name* (looked up beside the bundle only) + whether embedded."""
    if not isinstance(ref, dict):
        raise check.fail("frame_model", "expected a JSON object")
    allowed = {"sha256", "name", "embedded"} | ({"v1_header"} if legacy else set())
    if set(ref) - allowed:
        raise check.fail("frame_model", f"unknown fields {sorted(set(ref) - allowed)}")
    check = check.nested("frame_model")
    check_sha256(check, ref, "sha256")
    name = check.string(ref, "name", max_len=255)
    if "/" in name or "\\" in name or name in (".", ".."):
        raise check.fail("name", f"expected a bare file name, got {_show(name)}")
    if check.boolean(ref, "embedded") and legacy:
        check.string(ref, "v1_header", max_len=10_000_000)


def check_sha256(check: HeaderChecker, data: Mapping[str, Any], key: str) -> str:
    """A sha256 as 64 lowercase hex digits."""
    sha = check.string(data, key)
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise check.fail(key, "expected 64 lowercase hex digits")
    return sha
