"""--main-face-only on real footage where the main person changes mid-video: both people keep their rows."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from affectseq.io.video import VideoReader
from affectseq.predict.pipeline import PredictOptions, predict_video_table

from test_predict_helpers import brightness_bundle, write_video


def _frames(path: Path, first: int, stop: int, size: tuple[int, int]) -> list[np.ndarray]:
    return [cv2.resize(f.rgb, size, interpolation=cv2.INTER_AREA) for f in VideoReader(path) if first <= f.frame_idx < stop]


@pytest.fixture(scope="module")
def two_people(clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 frames, two people side by side: the larger one (left, face_noface.mov frames 48-95)
    leaves after 24 frames (that clip's face ends at its frame 71); the smaller one (right,
    single_face.mp4) stays throughout."""
    left = _frames(clips_dir / "face_noface.mov", 48, 96, (320, 180))
    right = _frames(clips_dir / "single_face.mp4", 0, 48, (240, 135))
    frames = []
    for a, b in zip(left, right):
        canvas = np.full((240, 640, 3), 90, np.uint8)
        canvas[30:210, :320] = a
        canvas[52:187, 360:600] = b
        frames.append(canvas)
    return write_video(tmp_path_factory.mktemp("main") / "two_people.mp4", frames, fps=24)


def test_main_face_changes_and_both_people_keep_their_rows(two_people: Path) -> None:
    options = PredictOptions(main_face_only=True, progress=False)
    table = predict_video_table(two_people, brightness_bundle(), options).table
    everyone = predict_video_table(two_people, brightness_bundle(), PredictOptions(progress=False)).table
    assert table["frame_idx"].tolist() == list(range(48))  # one row per frame: one face at most
    assert table["face_id"].notna().all()  # someone is the main face on every frame
    left = everyone.loc[everyone.x1 < 320].groupby("face_id")["frame_idx"].count().idxmax()
    right = everyone.loc[everyone.x1 >= 320].groupby("face_id")["frame_idx"].count().idxmax()
    main = table.set_index("frame_idx")["face_id"]
    # The larger (left) person is the main face while on screen, then the right one takes over.
    assert main.loc[:20].eq(left).all() and main.loc[26:].eq(right).all()
    assert main.loc[21:25].isin([left, right]).all()


def test_live_prediction_follows_the_same_main_face_rule(tmp_path: Path) -> None:
    from affectseq.predict.streaming import LivePredictor

    from test_predict_helpers import ScriptedFaces, box_crops, gray_frames

    video = write_video(tmp_path / "gray.mp4", gray_frames([20] * 10 + [200] * 10), fps=25)
    present = lambda f, i: i == 7 or f < 10  # noqa: E731  (face 1, the larger, leaves after frame 9)
    boxes = {1: (16.0, 16.0, 80.0, 80.0), 7: (90.0, 10.0, 120.0, 60.0)}
    options = PredictOptions(main_face_only=True, mode="causal", progress=False)
    table = predict_video_table(video, brightness_bundle(0.2), options, face_source=ScriptedFaces(boxes, present),
                                aligner=box_crops).table
    live = LivePredictor(brightness_bundle(0.2), ScriptedFaces(boxes, present), box_crops, main_face_only=True)
    rows = [row for frame in VideoReader(video) for row in live.process(frame.frame_idx, frame.time_sec, frame.rgb)]
    assert [r["face_id"] for r in rows] == table["face_id"].tolist() == [1] * 10 + [7] * 10
    np.testing.assert_allclose(np.stack([r["expr_prob"] for r in rows]),
                               table.filter(like="prob_").to_numpy(float), atol=1e-6)
