"""``affectseq demo``: the default model on the bundled sample clip, every output, a printed summary."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import av
import pandas as pd
import pytest

from affectseq.cli import main
from affectseq.predict.sample import SAMPLE_ATTRIBUTION, sample_video_path
from affectseq.utils.hashing import sha256_file

REPO = Path(__file__).resolve().parents[1]


def test_sample_clip_is_the_committable_shared_clip(clips_dir: Path) -> None:
    """Found as package data (what an installed wheel has) and in the checkout, byte-identical."""
    package_copy = Path(str(resources.files("affectseq.predict") / "assets" / "sample.mp4"))
    checkout_copy = REPO / "examples" / "sample.mp4"
    expected = sha256_file(clips_dir / "WolfgangLanger_Pexels.mp4")
    assert sha256_file(package_copy) == sha256_file(checkout_copy) == expected
    assert sha256_file(sample_video_path()) == expected
    assert SAMPLE_ATTRIBUTION in (REPO / "examples" / "README.md").read_text()


def test_demo_on_a_short_cut_of_the_sample(tmp_path: Path, capsys: pytest.CaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's wiring, fast: the first 1.5 s of the sample stand in for the whole clip."""
    from affectseq.io.video import VideoReader

    from test_predict_helpers import write_video

    frames = [f.rgb for f in VideoReader(sample_video_path(), end_sec=1.5)]
    short = write_video(tmp_path / "sample.mp4", frames, fps=24, audio=True)
    monkeypatch.setattr("affectseq.predict.sample.sample_video_path", lambda: short)
    out = tmp_path / "demo_out"
    assert main(["demo", "--out", str(out), "--no-progress", "--keep-audio"]) == 0
    printed = capsys.readouterr().out
    result = out / "sample"
    assert {p.name for p in result.iterdir()} == {"frames.csv", "summary.json", "timeline.png", "overlay.mp4"}
    assert str(result.resolve()) in printed and "dominant expression" in printed and "valence" not in printed
    table = pd.read_csv(result / "frames.csv")
    assert table["frame_idx"].nunique() == len(frames) and table["face_id"].notna().all()
    with av.open(str(result / "overlay.mp4")) as container:
        assert container.streams.video[0].frames == len(frames) and container.streams.audio


@pytest.mark.slow
def test_demo_writes_everything_and_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "demo_out"
    assert main(["demo", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    result = out / "sample"
    assert {p.name for p in result.iterdir()} == {"frames.csv", "summary.json", "timeline.png", "overlay.mp4"}
    assert str(result.resolve()) in printed and "dominant expression" in printed
    assert "valence" not in printed  # the default model has no VA head: nothing invented

    table = pd.read_csv(result / "frames.csv")
    assert table["frame_idx"].nunique() == 472
    assert table.groupby("frame_idx")["face_id"].count().gt(0).mean() >= 0.98  # she is in every frame
    summary = json.loads((result / "summary.json").read_text())
    assert summary["model"]["id"] == "default" and summary["dominant_expression"] in summary["time_share"]
    with av.open(str(result / "overlay.mp4")) as container:
        assert container.streams.video[0].frames == 472

    # She looks sad early and smiles broadly later (README of the clips): the model must see the change.
    faces = table.dropna(subset=["label"])
    early, late = faces[faces.time_sec < 5.0], faces[faces.time_sec > 13.0]
    assert late["prob_happiness"].mean() > early["prob_happiness"].mean() + 0.2
    assert early["prob_sadness"].mean() > late["prob_sadness"].mean()


def test_a_demo_that_fails_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo runs through the one predict loop (which records a failure instead of raising): still one line."""
    broken = tmp_path / "sample.mp4"
    broken.write_bytes(b"not a video")
    monkeypatch.setattr("affectseq.predict.sample.sample_video_path", lambda: broken)
    assert main(["demo", "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sample.mp4" in err[0], err
    assert not (tmp_path / "out" / "sample").exists()
