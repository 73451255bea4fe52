"""One predict loop, pluggable engines: an engine registered from outside affectseq only carries out plans.

The output-root check, the lock, planning (folders, the skip rule) and outcome recording are the loop's
(affectseq.predict.engines.predict_batch), the same for local, --workers and Ray; before, each of the three
entry points repeated them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from affectseq.errors import ConfigError
from affectseq.predict.batch import OutcomeRecorder, predict_planned
from affectseq.predict.engines import (PREDICT_ENGINES, LocalEngine, create_engine, known_outcomes, predict_batch,
                                       register_engine)
from affectseq.predict.pipeline import PredictOptions
from affectseq.predict.writers import OutputOptions

from test_predict_helpers import ScriptedFaces, box_crops, brightness_bundle, gray_frames, write_video

OPTIONS = PredictOptions(progress=False)
RUNS: list[list[str]] = []  # the plans each ReverseEngine.run was given, by video stem


def scripted_faces() -> ScriptedFaces:
    return ScriptedFaces({1: (10.0, 10.0, 60.0, 60.0)})


class ReverseEngine:
    """A toy engine: this process, last video first (what an engine may choose: its own order)."""

    face_source_factory = staticmethod(scripted_faces)  # recorded in the fingerprints by the loop
    aligner = staticmethod(box_crops)

    def __init__(self, model) -> None:
        self.model = model

    @classmethod
    def from_request(cls, model, **_):
        return cls(model.load())

    def bundle(self):
        return self.model

    def run(self, plans, options, output_options, record: OutcomeRecorder) -> None:
        todo = known_outcomes(plans, record)
        RUNS.append([p.video.stem for p in todo])
        for plan in reversed(todo):
            record([predict_planned(plan, self.model, options, output_options, self.face_source_factory,
                                    self.aligner)])


class Request:
    def load(self):
        return brightness_bundle()


@pytest.fixture()
def reverse_engine():
    register_engine("reverse", f"{__name__}:ReverseEngine")
    RUNS.clear()
    yield
    PREDICT_ENGINES.pop("reverse", None)


def _videos(root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    return [write_video(root / f"{name}.mp4", gray_frames([value] * 3)) for name, value in (("a", 40), ("b", 200))]


def test_a_registered_engine_runs_through_the_one_loop(tmp_path: Path, reverse_engine) -> None:
    videos = _videos(tmp_path / "in")
    out = tmp_path / "out"
    engine = create_engine("reverse", Request())
    seen = []
    report = predict_batch(videos, out, engine, OPTIONS, OutputOptions(timeline=False), on_outcome=seen.append)
    assert RUNS == [["a", "b"]] and [o.video.stem for o in seen] == ["b", "a"]
    assert [o.video.stem for o in report.outcomes] == ["a", "b"]  # the report is in input order, whatever the engine
    assert report.count("done") == 2 and report.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]  # no lock or temporary folder left
    # The loop's skip rule: a rerun hands the engine nothing to predict.
    again = predict_batch(videos, out, engine, OPTIONS, OutputOptions(timeline=False))
    assert again.count("skipped") == 2 and RUNS[-1] == []


def test_engines_write_the_same_folders(tmp_path: Path, reverse_engine) -> None:
    """The toy engine and the local engine give byte-identical tables (same plans, same per-video code)."""
    videos = _videos(tmp_path / "in")
    local = LocalEngine(brightness_bundle(), scripted_faces, box_crops)
    predict_batch(videos, tmp_path / "local", local, OPTIONS, OutputOptions(timeline=False))
    predict_batch(videos, tmp_path / "toy", create_engine("reverse", Request()), OPTIONS,
                  OutputOptions(timeline=False))
    for video in videos:
        assert ((tmp_path / "local" / video.stem / "frames.csv").read_bytes()
                == (tmp_path / "toy" / video.stem / "frames.csv").read_bytes())


def test_the_cli_takes_a_registered_engine_and_refuses_unknown_ones(tmp_path: Path, reverse_engine,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    from affectseq.cli import main
    from affectseq.scale import predict_shards

    monkeypatch.setattr(predict_shards.ModelRequest, "load", lambda self: brightness_bundle())
    videos = _videos(tmp_path / "in")
    assert main(["predict", *map(str, videos), "-o", str(tmp_path / "out"), "--engine", "reverse",
                 "--no-progress", "--no-timeline"]) == 0
    assert RUNS == [["a", "b"]] and "2 done, 0 skipped" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="unknown predict engine 'nope'; choose one of local, workers, ray"):
        create_engine("nope", Request())
    assert main(["predict", str(videos[0]), "-o", str(tmp_path / "x"), "--engine", "nope"]) != 0
    assert "unknown predict engine" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_the_loop_checks_causal_mode_once_for_every_engine(tmp_path: Path, reverse_engine) -> None:
    from dataclasses import replace

    class Bidirectional(Request):
        def load(self):
            return replace(brightness_bundle(), causal_ok=False)

    with pytest.raises(ConfigError, match="bidirectional"):
        predict_batch(_videos(tmp_path / "in"), tmp_path / "out", create_engine("reverse", Bidirectional()),
                      PredictOptions(mode="causal", progress=False))
    assert not (tmp_path / "out").exists() and RUNS == []


def test_an_engine_name_already_taken_is_refused_unless_replace() -> None:
    """As for output writers and dataset layouts: a plug-in must not silently replace ``local`` (it did)."""
    with pytest.raises(ConfigError, match="'local' is already registered"):
        register_engine("local", f"{__name__}:ReverseEngine")
    assert PREDICT_ENGINES["local"] == "affectseq.predict.engines:LocalEngine"
    register_engine("reverse", f"{__name__}:ReverseEngine")
    try:
        register_engine("reverse", f"{__name__}:ReverseEngine", replace=True)
    finally:
        PREDICT_ENGINES.pop("reverse", None)
