"""The predict pipeline with scripted faces and a known-answer frame stage: rows, gaps, tracks, smoothing modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectseq.errors import ConfigError
from affectseq.labels import EXPR_CLASSES_7
from affectseq.predict.pipeline import PredictOptions, predict_video_table
from affectseq.predict.table import frame_columns
from affectseq.utils.prefetch import prefetch

from test_predict_helpers import ScriptedFaces, box_crops, brightness_bundle, gray_frames, write_video

# 20 frames at 25 fps: dark (bucket 0 = Neutral) then bright (level 200 -> bucket 5 = Sadness).
LEVELS = [20] * 10 + [200] * 10
MISSING = {5, 6, 7}  # frames where the face is missing
BOX = (16.0, 16.0, 80.0, 80.0)


@pytest.fixture(scope="module")
def gray_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("v") / "gray.mp4", gray_frames(LEVELS), fps=25)


def _run(video: Path, window_sec: float = 0.0, mode: str = "offline", faces=None):
    faces = faces or ScriptedFaces({1: BOX}, lambda f, i: f not in MISSING)
    options = PredictOptions(mode=mode, batch_size=4, progress=False)
    return predict_video_table(video, brightness_bundle(window_sec), options, face_source=faces, aligner=box_crops)


def test_rows_gaps_and_labels(gray_video: Path) -> None:
    pred = _run(gray_video)
    table = pred.table
    assert list(table.columns) == frame_columns(EXPR_CLASSES_7, has_va=False)
    assert table["frame_idx"].tolist() == list(range(20))  # one face: exactly one row per frame
    np.testing.assert_allclose(table["time_sec"], np.arange(20) / 25, atol=1e-6)
    missing = table[table["face_id"].isna()]
    assert set(missing["frame_idx"]) == MISSING
    assert missing[["x1", "prob_neutral", "det_score"]].isna().all().all() and missing["label"].isna().all()
    present = table[table["face_id"].notna()]
    assert present.loc[present.frame_idx < 10, "label"].eq("Neutral").all()
    assert present.loc[present.frame_idx >= 10, "label"].eq("Sadness").all()
    assert present[["x1", "y1", "x2", "y2"]].iloc[0].tolist() == list(BOX)
    assert pred.summary["frames_with_face"] == 17 and pred.summary["frames_without_face"] == 3
    assert pred.summary["dominant_expression"] == "Sadness"
    assert pred.summary["time_share"]["Sadness"] == pytest.approx(10 / 17, abs=1e-6)
    assert "valence_arousal" not in pred.summary  # no VA head: no VA anywhere


def test_offline_smoothing_is_centred_and_masked(gray_video: Path) -> None:
    table = _run(gray_video, window_sec=0.4).table.set_index("frame_idx")
    # Frame 9 (0.36 s): window [0.16, 0.56] s = frames 4..14 without the gap 5-7 -> 3 dark, 5 bright.
    assert table.loc[9, "prob_sadness"] == pytest.approx(5 / 8, abs=1e-5)
    assert table.loc[9, "prob_neutral"] == pytest.approx(3 / 8, abs=1e-5)
    probs = table.filter(like="prob_").dropna()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert table.loc[list(MISSING), "prob_neutral"].isna().all()


def test_causal_smoothing_uses_past_only(gray_video: Path) -> None:
    table = _run(gray_video, window_sec=0.4, mode="causal").table.set_index("frame_idx")
    assert table.loc[9, "prob_neutral"] == pytest.approx(1.0)  # nothing bright has happened yet
    # Frame 12: window (0.08, 0.48] = frames 3..12 without 5-7 -> 4 dark, 3 bright.
    assert table.loc[12, "prob_sadness"] == pytest.approx(3 / 7, abs=1e-5)


def test_two_faces_get_two_rows_and_stable_ids(gray_video: Path) -> None:
    faces = ScriptedFaces({1: BOX, 7: (90.0, 10.0, 120.0, 60.0)}, lambda f, i: i == 1 or f >= 10)
    table = _run(gray_video, faces=faces).table
    assert len(table) == 10 + 2 * 10
    assert table.groupby("frame_idx")["face_id"].apply(list).loc[12] == [1, 7]
    assert set(faces.calls) == set(range(20))  # every frame reached the face stage, in order
    assert faces.calls == sorted(faces.calls)


def test_main_face_only_keeps_the_largest_longest_track(gray_video: Path) -> None:
    faces = ScriptedFaces({1: BOX, 7: (90.0, 10.0, 120.0, 60.0)})
    from affectseq.predict.pipeline import predict_video_table as run

    options = PredictOptions(main_face_only=True, progress=False)
    table = run(gray_video, brightness_bundle(), options, face_source=faces, aligner=box_crops).table
    assert table["face_id"].unique().tolist() == [1] and len(table) == 20


def test_main_face_only_keeps_every_person_who_was_the_main_face(gray_video: Path) -> None:
    # Face 1 (large) leaves after frame 9; face 7 (small) is there all along and takes over.
    # The old rule (one track per video, the largest total area) dropped face 7's rows or face 1's.
    faces = ScriptedFaces({1: BOX, 7: (90.0, 10.0, 120.0, 60.0)}, lambda f, i: i == 7 or f < 10)
    options = PredictOptions(main_face_only=True, progress=False)
    table = predict_video_table(gray_video, brightness_bundle(), options, face_source=faces, aligner=box_crops).table
    assert len(table) == 20 and table["frame_idx"].tolist() == list(range(20))  # one row per frame
    assert table.loc[table.frame_idx < 10, "face_id"].eq(1).all()
    assert table.loc[table.frame_idx >= 10, "face_id"].eq(7).all()
    assert table["label"].notna().all()


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError):
        PredictOptions(mode="sideways")
    with pytest.raises(ConfigError):
        PredictOptions(detect_every=0)


def test_prefetch_keeps_order_and_reraises() -> None:
    assert list(prefetch(range(100), depth=3)) == list(range(100))

    def broken():
        yield 1
        raise ValueError("decoder broke")

    got = []
    with pytest.raises(ValueError, match="decoder broke"):
        for item in prefetch(broken()):
            got.append(item)
    assert got == [1]
