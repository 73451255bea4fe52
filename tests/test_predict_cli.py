"""``affectseq predict`` end to end on real clips (few frames), and the ``predict_video`` API."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from affectseq.cli import main
from affectseq.labels import EXPR_CLASSES_7
from affectseq.predict.table import frame_columns

from test_predict_helpers import save_tiny_frame_model, write_video


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_frame_model(tmp_path_factory.mktemp("model") / "tiny.safetensors")


def _first_frames(src: Path, dst: Path, n: int) -> Path:
    """The first ``n`` frames of a real clip, re-encoded (keeps the default-tier tests fast)."""
    from affectseq.io.video import VideoReader

    frames = [f.rgb for f, _ in zip(VideoReader(src), range(n))]
    return write_video(dst, frames, fps=24)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, clips_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    return {
        "pan": _first_frames(clips_dir / "multi_face_pan.mp4", root / "pan.mp4", 6),
        "sky": _first_frames(clips_dir / "no_face.mp4", root / "sky.mp4", 6),
    }


def test_predict_cli_outputs_and_bad_file(tmp_path: Path, clips_dir: Path, tiny_model: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    missing = tmp_path / "nope.mp4"
    rc = main(["predict", str(clips_dir / "single_face.mp4"), str(missing), "-o", str(out), "--model",
               str(tiny_model), "--overlay", "--keep-audio", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 1
    errors = [line for line in captured.err.splitlines() if "error" in line]
    assert len(errors) == 1 and str(missing) in errors[0] and "not found" in errors[0]
    assert "1 done, 0 skipped" in captured.out and "1 failed" in captured.out
    result = out / "single_face"
    assert {p.name for p in result.iterdir()} == {"frames.csv", "summary.json", "timeline.png", "overlay.mp4"}
    table = pd.read_csv(result / "frames.csv")
    assert list(table.columns) == frame_columns(EXPR_CLASSES_7, has_va=False)
    assert table["frame_idx"].tolist() == list(range(72))  # single_face.mp4: 72 frames, one face each
    assert table["face_id"].notna().mean() >= 0.98
    summary = json.loads((result / "summary.json").read_text())
    assert summary["frames_with_face"] >= 71 and summary["video"]["fps"] == pytest.approx(30, abs=0.1)
    assert summary["model"]["id"] == "tiny.safetensors" and summary["processing"]["fps"] > 0
    assert "valence_arousal" not in summary
    with av.open(str(result / "overlay.mp4")) as container:
        assert container.streams.video[0].frames == 72 and container.streams.audio


def test_no_face_video_succeeds_with_a_warning(tmp_path: Path, clips: dict[str, Path], tiny_model: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        rc = main(["predict", str(clips["sky"]), "-o", str(tmp_path), "--model", str(tiny_model), "--no-progress",
                   "--format", "parquet"])
    assert rc == 0
    assert any("no face" in r.getMessage() for r in caplog.records)
    table = pd.read_parquet(tmp_path / "sky" / "frames.parquet")
    assert len(table) == 6 and table["face_id"].isna().all() and table["label"].isna().all()


def test_main_face_only_and_detect_every(tmp_path: Path, clips: dict[str, Path], tiny_model: Path) -> None:
    rc = main(["predict", str(clips["pan"]), "-o", str(tmp_path / "all"), "--model", str(tiny_model),
               "--detect-every", "3", "--no-progress"])
    assert rc == 0
    every = pd.read_csv(tmp_path / "all" / "pan" / "frames.csv")
    assert every.groupby("frame_idx")["face_id"].nunique().min() >= 4  # five people in every frame
    rc = main(["predict", str(clips["pan"]), "-o", str(tmp_path / "main"), "--model", str(tiny_model),
               "--main-face-only", "--no-progress"])
    main_only = pd.read_csv(tmp_path / "main" / "pan" / "frames.csv")
    assert rc == 0 and main_only["face_id"].nunique() == 1 and len(main_only) == 6


def test_python_api_returns_the_frames_table(clips: dict[str, Path], tiny_model: Path) -> None:
    import affectseq.api

    table = affectseq.api.predict_video(clips["pan"], model=tiny_model, device="cpu", mode="causal",
                                        smoothing_sec=0)
    assert list(table.columns) == frame_columns(EXPR_CLASSES_7, has_va=False)
    assert table["frame_idx"].nunique() == 6 and table.attrs["summary"]["frames_with_face"] == 6
    probs = table.filter(like="prob_").dropna()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_bad_model_file_is_one_clear_line(tmp_path: Path, clips: dict[str, Path],
                                          capsys: pytest.CaptureFixture) -> None:
    fake = tmp_path / "weights.safetensors"
    fake.write_text("not weights")
    rc = main(["predict", str(clips["pan"]), "-o", str(tmp_path / "out"), "--model", str(fake)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and str(fake) in err[0] and "not an affectseq model" in err[0]
    assert not (tmp_path / "out" / "pan").exists()
