"""frames.csv / Parquet columns and round trip, summary.json content, timeline.png."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectseq.labels import EXPR_CLASSES_7, EXPR_CLASSES_8
from affectseq.predict.outputs import (
    format_summary, read_frames_table, summarize, write_frames_table, write_summary,
)
from affectseq.predict.table import FaceObservations, build_frames_table, frame_columns
from affectseq.predict.timeline import draw_timeline

SEVEN = ["frame_idx", "time_sec", "face_id", "x1", "y1", "x2", "y2", "det_score", "prob_neutral", "prob_anger",
         "prob_disgust", "prob_fear", "prob_happiness", "prob_sadness", "prob_surprise", "label"]


def _table(classes=EXPR_CLASSES_7, has_va=False, n_frames=10, face_frames=(0, 1, 2, 3, 4, 5)):
    rng = np.random.default_rng(0)
    frames = np.asarray(face_frames, dtype=np.int64)
    probs = np.zeros((len(frames), len(classes)), np.float32)
    probs[:, 4] = 0.9  # Happiness wins
    probs[:, 0] = 0.1
    if len(frames):
        probs[-1] = np.eye(len(classes))[5]  # one Sadness frame
    obs = FaceObservations(
        frame_idx=frames, face_id=np.full(len(frames), 2), boxes=np.tile([10, 20, 50, 70], (len(frames), 1)),
        det_score=np.full(len(frames), 0.95, np.float32), expr_prob=probs,
        va=rng.uniform(-1, 1, (len(frames), 2)).astype(np.float32) if has_va else None,
    )
    return build_frames_table(np.arange(n_frames), np.arange(n_frames) / 25, obs, classes, has_va)


def test_columns_match_the_contract() -> None:
    assert frame_columns(EXPR_CLASSES_7, False) == SEVEN
    assert frame_columns(EXPR_CLASSES_8, True) == SEVEN[:-1] + ["prob_other", "label", "valence", "arousal"]
    assert list(_table().columns) == SEVEN


def test_csv_round_trip_has_empty_cells_for_faceless_frames(tmp_path: Path) -> None:
    table = _table()
    path = write_frames_table(table, tmp_path)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(SEVEN)
    assert lines[7] == "6,0.24" + "," * 14  # frame 6 has no face: every other cell empty
    back = read_frames_table(path)
    assert back["face_id"].isna().sum() == 4 and back["face_id"].dropna().eq(2).all()
    np.testing.assert_allclose(back["prob_happiness"].iloc[:5], 0.9, atol=1e-5)
    assert back["label"].iloc[0] == "Happiness" and back["label"].iloc[5] == "Sadness"


def test_parquet_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    table = _table(EXPR_CLASSES_8, has_va=True)
    back = read_frames_table(write_frames_table(table, tmp_path, "parquet"))
    pd.testing.assert_frame_equal(back, table)


def test_summary_counts_shares_and_no_invented_va(tmp_path: Path) -> None:
    table = _table()
    summary = summarize(table, list(EXPR_CLASSES_7), False, video={"path": "v.mp4", "fps": 25.0},
                        model={"id": "m"}, processing={"fps": 123.0})
    assert summary["frames_processed"] == 10
    assert summary["frames_with_face"] == 6 and summary["frames_without_face"] == 4
    assert summary["dominant_expression"] == "Happiness"
    assert summary["time_share"]["Happiness"] == pytest.approx(5 / 6, abs=1e-6)
    assert sum(summary["time_share"].values()) == pytest.approx(1.0)
    assert "valence_arousal" not in summary
    assert "valence" not in format_summary(summary)
    json.loads(write_summary(summary, tmp_path).read_text())


def test_summary_va_only_with_a_va_head() -> None:
    table = _table(has_va=True)
    summary = summarize(table, list(EXPR_CLASSES_7), True, video={}, model={}, processing={"fps": 1.0})
    face = table[table.face_id.notna()]
    assert summary["valence_arousal"]["valence"]["mean"] == pytest.approx(face.valence.mean(), abs=1e-5)
    assert summary["valence_arousal"]["arousal"]["std"] == pytest.approx(face.arousal.std(ddof=0), abs=1e-5)
    assert "valence mean" in format_summary(summary)


def test_summary_without_any_face() -> None:
    table = _table(face_frames=())
    summary = summarize(table, list(EXPR_CLASSES_7), False, video={}, model={}, processing={"fps": 1.0})
    assert summary["dominant_expression"] is None and summary["frames_with_face"] == 0
    assert "no face" in format_summary(summary)


@pytest.mark.parametrize("has_va,face_frames", [(False, (0, 1, 2, 3, 4, 5)), (True, (2, 3)), (False, ())])
def test_timeline_png(tmp_path: Path, has_va: bool, face_frames: tuple) -> None:
    table = _table(has_va=has_va, face_frames=face_frames)
    path = draw_timeline(table, EXPR_CLASSES_7, tmp_path / "timeline.png", title="v.mp4", has_va=has_va)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert not list(tmp_path.glob(".*tmp"))  # written atomically, no leftovers


def test_timeline_has_one_panel_per_face(tmp_path: Path) -> None:
    """Two tracks -> two probability panels (the figure grows), not one mixed plot."""
    one = draw_timeline(_table(), EXPR_CLASSES_7, tmp_path / "one.png", title="v")
    base = _table()
    second = base[base.face_id.notna()].copy()
    second["face_id"] = 5
    two = draw_timeline(pd.concat([base, second]).sort_values("frame_idx"), EXPR_CLASSES_7, tmp_path / "two.png",
                        title="v")
    import matplotlib.image

    h1, h2 = matplotlib.image.imread(one).shape[0], matplotlib.image.imread(two).shape[0]
    assert h2 > h1 * 1.4


def test_timeline_of_a_long_video_shows_each_label_run_and_the_gap(tmp_path: Path) -> None:
    """6,000 frames (drawn decimated): Sadness, then no face, then Happiness -- in the bands and the strip."""
    import matplotlib.image

    n = 6000
    frames = np.concatenate([np.arange(0, 2500), np.arange(3500, n)])
    probs = np.eye(7, dtype=np.float32)[np.where(frames < 3000, 5, 4)]
    obs = FaceObservations(frame_idx=frames, face_id=np.zeros(len(frames), np.int64),
                           boxes=np.tile([10, 20, 50, 70], (len(frames), 1)).astype(np.float32),
                           det_score=np.ones(len(frames), np.float32), expr_prob=probs, va=None)
    table = build_frames_table(np.arange(n), np.arange(n) / 25, obs, EXPR_CLASSES_7, False)
    image = matplotlib.image.imread(draw_timeline(table, EXPR_CLASSES_7, tmp_path / "t.png", title="long"))
    rgb = (image[..., :3] * 255).round().astype(int)

    def columns_with(hex_color: str) -> np.ndarray:
        color = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
        return np.flatnonzero((np.abs(rgb - color).max(axis=2) < 8).sum(axis=0) > 20)

    sad, happy = columns_with("#1f77b4"), columns_with("#ffbf00")
    assert len(sad) > 200 and len(happy) > 200
    assert sad.max() < happy.min() - 50  # the no-face gap (100 s of 240 s) lies between them
