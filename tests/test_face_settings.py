"""The face settings are declared and checked once (affectseq.faces.settings), and every entry point uses it.

Before, ``detect_every`` was checked in seven places with two different ranges (serve refused 1001, the CLI took
it), ``--detector``/``--detect-every`` were declared in three CLI modules and each options class hand-wrote its
fingerprint.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from affectseq.errors import ConfigError, SettingError
from affectseq.faces.settings import FACE_PARAMS, MAX_DETECT_EVERY, FaceSettings

SRC = Path(__file__).resolve().parents[1] / "src" / "affectseq"


def _compares_detect_every_with_a_number(node: ast.AST) -> bool:
    if not isinstance(node, ast.Compare):
        return False
    sides = [node.left, *node.comparators]
    named = any((isinstance(s, ast.Name) and s.id == "detect_every")
                or (isinstance(s, ast.Attribute) and s.attr == "detect_every")
                or (isinstance(s, ast.Subscript) and isinstance(s.slice, ast.Constant)
                    and s.slice.value == "detect_every") for s in sides)
    number = any(isinstance(s, ast.Constant) and isinstance(s.value, (int, float)) and not isinstance(s.value, bool)
                 for s in sides)
    return named and number


def test_detect_every_is_checked_in_one_file_only() -> None:
    """No module compares detect_every with a bound: its range lives in the declaration of faces/settings.py."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [f"{path.relative_to(SRC)}:{n.lineno}" for n in ast.walk(tree)
                      if _compares_detect_every_with_a_number(n)]
    assert offenders == []
    declared = [path.relative_to(SRC).as_posix() for path in sorted(SRC.rglob("*.py"))
                if '"detect_every": Param(' in path.read_text(encoding="utf-8")]
    assert declared == ["faces/settings.py"]


def test_every_options_class_and_the_web_form_share_the_declaration() -> None:
    from affectseq.predict.pipeline import PredictOptions
    from affectseq.prepare.video_crops import CropOptions
    from affectseq.serve.options import FORM_PARAMS

    for name in ("detector", "detect_every", "main_face_only"):
        assert PredictOptions.PARAMS[name] is FACE_PARAMS[name]
    assert CropOptions.PARAMS["detect_every"] is FACE_PARAMS["detect_every"] is FORM_PARAMS["detect_every"]
    assert CropOptions.PARAMS["detector"] is FACE_PARAMS["detector"]


@pytest.mark.parametrize("value", [0, -3, MAX_DETECT_EVERY + 1, 2.5, "8", True])
def test_one_range_for_every_entry_point(value) -> None:
    from affectseq.faces.schedule import DetectionSchedule
    from affectseq.faces.stream import make_tracker
    from affectseq.faces.tracking import FaceTracker
    from affectseq.predict.pipeline import PredictOptions
    from affectseq.prepare.video_crops import CropOptions

    message = f"detect_every must be an integer between 1 and {MAX_DETECT_EVERY}, got {value!r}"
    for make in (lambda: FaceSettings(detect_every=value), lambda: PredictOptions(detect_every=value),
                 lambda: CropOptions(detect_every=value), lambda: make_tracker("haar", value),
                 lambda: FaceTracker(object(), detect_every=value), lambda: DetectionSchedule(value, None)):
        with pytest.raises(SettingError) as err:
            make()
        assert str(err.value) == message
        assert isinstance(err.value, ConfigError) and isinstance(err.value, ValueError)  # both old contracts


def test_the_web_form_takes_the_same_range() -> None:
    from affectseq.serve.options import OptionError, parse_options

    assert parse_options({"detect_every": str(MAX_DETECT_EVERY)})["detect_every"] == MAX_DETECT_EVERY
    with pytest.raises(OptionError, match=f"between 1 and {MAX_DETECT_EVERY}"):
        parse_options({"detect_every": str(MAX_DETECT_EVERY + 1)})


def test_bounds_and_detectors_are_accepted() -> None:
    assert FaceSettings(detect_every=1).detect_every == 1
    assert FaceSettings(detector="haar", detect_every=MAX_DETECT_EVERY).detector == "haar"
    with pytest.raises(SettingError, match="detector must be one of haar, mtcnn"):
        FaceSettings(detector="yolo")
    with pytest.raises(SettingError, match="main_face_only must be true or false"):
        FaceSettings(main_face_only="yes")


def test_fingerprints_come_from_the_declaration() -> None:
    """Same keys as the hand-written fingerprints had, so existing outputs and markers still match."""
    from affectseq.predict.pipeline import PredictOptions
    from affectseq.prepare.video_crops import CropOptions

    options = PredictOptions(detect_every=3, batch_size=7, torch_threads=2, progress=False, mode="causal")
    assert options.fingerprint() == {"detector": "mtcnn", "detect_every": 3, "main_face_only": False,
                                     "mode": "causal", "stride": 1}
    assert CropOptions(detect_every=4).fingerprint() == {"detector": "mtcnn", "detect_every": 4, "jpeg_quality": 95}
    assert options.faces == FaceSettings(detect_every=3)


@pytest.mark.parametrize("command", [["predict", "x.mp4"], ["demo"], ["extract", "--data", "d", "--checkpoint", "c",
                                                                       "--out", "o"], ["data", "faces", "d", "--out", "o"]])
def test_cli_commands_declare_the_face_options_from_the_declaration(command: list[str]) -> None:
    from affectseq.cli import build_parser

    args = build_parser().parse_args(command + ["--detect-every", "5", "--detector", "haar"])
    assert (args.detect_every, args.detector) == (5, "haar")
    assert build_parser().parse_args(command).detect_every == FACE_PARAMS["detect_every"].default


def test_cli_refuses_an_out_of_range_value_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from affectseq.cli import main

    code = main(["predict", str(tmp_path / "x.mp4"), "-o", str(tmp_path / "out"), "--detect-every", "0"])
    err = capsys.readouterr().err
    assert code != 0 and "detect_every must be an integer between 1 and 1000, got 0" in err
    assert not (tmp_path / "out").exists()
