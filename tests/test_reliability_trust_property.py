"""Issue #22: "one clear line or a correct result, never a traceback or a silent blank" (hypothesis).

Random JSON model headers (random documents, and the shipped header with one field replaced by a random
value -- NaN, +-inf, huge numbers, deep nesting included) go through the real header reader; random option
values go through the real command-line parser, model loader and serve form parser. Each must either be
refused with one AffectseqError/OptionError line, or be accepted with values that are finite and in range.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affectseq.errors import AffectseqError, ConfigError, InputError
from affectseq.modelfile.container import checked_header, read_raw_header
from affectseq.modelfile.schema import FRAME_FORMAT, SEQUENCE_FORMAT, parse_header_json

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "affectseq" / "weights" / "default_expr_ferplus.safetensors"
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-10**40, max_value=10**40),
                    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 10**25, 0, -1]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                    max_leaves=20)


def _one_line(err: BaseException, path: str) -> None:
    text = str(err)
    assert "\n" not in text and text.startswith(path), text


def _finite_everywhere(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite_everywhere(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite_everywhere(v) for v in value)
    return True


def _read(raw: str, fmt: str) -> None:
    path = "crafted.safetensors"
    try:
        header = checked_header(path, parse_header_json(path, raw, "model"), fmt)
    except InputError as err:
        _one_line(err, path)
        return
    assert isinstance(header, dict) and _finite_everywhere(header)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=JSON, fmt=st.sampled_from([FRAME_FORMAT, SEQUENCE_FORMAT]), depth=st.integers(0, 3000))
def test_random_headers_are_one_line_or_a_checked_header(doc: Any, fmt: str, depth: int) -> None:
    raw = json.dumps(doc, allow_nan=True)
    _read(raw, fmt)
    _read("[" * depth + raw + "]" * depth, fmt)  # deep nesting: a RecursionError traceback before


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


SHIPPED_HEADER = read_raw_header(SHIPPED) if SHIPPED.is_file() else {}
FIELDS = _paths(SHIPPED_HEADER)


@pytest.mark.skipif(not FIELDS, reason="shipped weights missing")
@settings(max_examples=300, deadline=None)
@given(where=st.sampled_from(FIELDS or [()]), value=JSON)
def test_the_shipped_header_with_any_field_replaced_is_one_line_or_a_checked_header(where: tuple, value: Any
                                                                                   ) -> None:
    header = json.loads(json.dumps(SHIPPED_HEADER))
    node = header
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    _read(json.dumps(header, allow_nan=True), FRAME_FORMAT)


OPTION_TEXT = st.one_of(NUMBERS.map(repr), NUMBERS.map(str), st.text(max_size=12),
                        st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-0", "1_000", " 2 "]))


@settings(max_examples=120, deadline=None)
@given(option=st.sampled_from(["--smoothing-sec", "--ray-cpus-per-task", "--ray-gpus-per-task"]), text=OPTION_TEXT)
def test_random_option_values_are_a_usage_error_or_finite(option: str, text: str) -> None:
    from affectseq.cli import build_parser

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = build_parser().parse_args(["predict", "v.mp4", f"{option}={text}"])
    except SystemExit as stop:
        assert stop.code == 2
        err = stderr.getvalue().strip().splitlines()
        assert option in err[-1], err  # argparse: usage, then one line naming the option
        return
    value = getattr(args, option.lstrip("-").replace("-", "_"))
    assert math.isfinite(value)


@settings(max_examples=120, deadline=None)
@given(option=st.sampled_from(["--detect-every", "--batch-size"]), text=OPTION_TEXT)
def test_random_face_and_batch_options_are_one_line_or_in_range(option: str, text: str) -> None:
    """The integer options through the parser and the options' declared constraints (PredictOptions)."""
    from affectseq.cli import build_parser
    from affectseq.cli.predict import build_options

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = build_parser().parse_args(["predict", "v.mp4", f"{option}={text}"])
        options, _ = build_options(args)
    except SystemExit as stop:
        assert stop.code == 2 and option in stderr.getvalue().strip().splitlines()[-1]
        return
    except AffectseqError as err:
        assert "\n" not in str(err) and option.lstrip("-").replace("-", "_") in str(err).replace("-", "_")
        return
    assert 1 <= options.detect_every <= 1000 and options.batch_size >= 1


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from test_predict_helpers import save_tiny_frame_model

    return save_tiny_frame_model(tmp_path_factory.mktemp("model") / "tiny.safetensors")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=NUMBERS)
def test_random_smoothing_windows_are_refused_or_used_as_given(value: float, tiny_model: Path) -> None:
    from affectseq.predict.model import load_model

    try:
        bundle = load_model(tiny_model, backend="torch", device="cpu", smoothing_sec=value)
    except ConfigError as err:
        assert "\n" not in str(err) and "--smoothing-sec" in str(err)
        assert not (math.isfinite(value) and value >= 0)
        return
    assert math.isfinite(value) and value >= 0
    assert bundle.info.extra["smoothing_sec"] == float(value)


@settings(max_examples=200, deadline=None)
@given(fields=st.dictionaries(st.sampled_from(["detect_every", "smoothing_sec", "main_face_only", "overlay"]),
                              OPTION_TEXT, max_size=4))
def test_random_serve_form_options_are_422_or_in_range(fields: dict[str, str]) -> None:
    from affectseq.serve.options import OptionError, parse_options

    try:
        options = parse_options(fields)
    except OptionError as err:
        assert "\n" not in str(err)
        return
    assert 1 <= options["detect_every"] <= 1000
    assert options["smoothing_sec"] is None or 0 <= options["smoothing_sec"] <= 60
    assert not isinstance(options, AffectseqError)
