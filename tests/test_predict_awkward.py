"""Awkward but valid videos succeed with the real face stage: one frame, 4K, 160x90, AVI/MPEG-4, HEVC,
black frames, no face, non-ASCII names, display rotation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from affectseq.predict.model import load_model
from affectseq.predict.pipeline import PredictOptions, predict_video_table

from test_predict_helpers import save_tiny_frame_model, write_video


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):
    # An untrained tiny model: these tests are about decoding, faces and rows, not accuracy.
    return load_model(save_tiny_frame_model(tmp_path_factory.mktemp("m") / "tiny.safetensors"), device="cpu")


@pytest.fixture(scope="module")
def face_rgb(clips_dir: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(clips_dir / "single_face.jpg")), cv2.COLOR_BGR2RGB)


def _predict(path: Path, bundle, stride: int = 1, detect_every: int = 8):
    return predict_video_table(path, bundle, PredictOptions(stride=stride, detect_every=detect_every,
                                                            progress=False))


def _assert_one_row_per_frame(pred, n_frames: int) -> None:
    assert pred.table["frame_idx"].nunique() == n_frames
    assert pred.summary["frames_processed"] == n_frames


def _even(img: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def test_single_frame_video(tmp_path: Path, bundle, face_rgb: np.ndarray) -> None:
    video = write_video(tmp_path / "one.mp4", [_even(face_rgb, 640, 360)])
    pred = _predict(video, bundle)
    _assert_one_row_per_frame(pred, 1)
    assert pred.summary["frames_with_face"] == 1


def test_4k_and_tiny_frames(tmp_path: Path, bundle, face_rgb: np.ndarray) -> None:
    big = write_video(tmp_path / "uhd.mp4", [_even(face_rgb, 3840, 2160)] * 2)
    pred = _predict(big, bundle)
    _assert_one_row_per_frame(pred, 2)
    face = pred.table.dropna(subset=["x1"])
    assert len(face) >= 2 and face["x2"].max() <= 3840 and face["x2"].max() - face["x1"].min() > 200
    tiny = write_video(tmp_path / "tiny.mp4", [_even(face_rgb, 160, 90)] * 3)
    _assert_one_row_per_frame(_predict(tiny, bundle), 3)  # a face may be too small to find; rows still exist


def test_mpeg4_part2_in_avi_and_non_ascii_name(tmp_path: Path, bundle, face_rgb: np.ndarray) -> None:
    frames = [_even(face_rgb, 320, 180)] * 4
    video = write_video(tmp_path / "vidéo_émotion_日本.avi", frames, codec="mpeg4")
    import av

    with av.open(str(video)) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
    pred = _predict(video, bundle)
    _assert_one_row_per_frame(pred, 4)
    assert pred.summary["frames_with_face"] == 4
    assert pred.summary["video"]["path"].endswith("vidéo_émotion_日本.avi")


def test_black_frames_have_no_face(tmp_path: Path, bundle) -> None:
    video = write_video(tmp_path / "black.mp4", [np.zeros((180, 320, 3), np.uint8)] * 5)
    pred = _predict(video, bundle)
    assert len(pred.table) == 5 and pred.table["face_id"].isna().all()
    assert pred.table.filter(like="prob_").isna().all().all() and pred.summary["dominant_expression"] is None


def test_hevc_mov_face_then_no_face(clips_dir: Path, bundle) -> None:
    pred = _predict(clips_dir / "face_noface.mov", bundle, stride=24, detect_every=1)
    assert pred.summary["video"]["codec"] == "hevc"
    table = pred.table
    with_face = set(table.loc[table.face_id.notna(), "frame_idx"])
    face_frames = [f for f in table.frame_idx.unique() if f <= 71]
    sky_frames = [f for f in table.frame_idx.unique() if f >= 73]
    assert sum(f in with_face for f in face_frames) >= 0.9 * len(face_frames)
    assert sum(f in with_face for f in sky_frames) <= 1


def test_rotated_video_boxes_are_upright(clips_dir: Path, bundle) -> None:
    pred = _predict(clips_dir / "rotated90_single_face.mp4", bundle, stride=6)
    assert (pred.summary["video"]["width"], pred.summary["video"]["height"]) == (360, 640)
    faces = pred.table.dropna(subset=["x1"])
    assert len(faces) >= 0.9 * pred.summary["frames_processed"]
    assert faces["x2"].max() <= 360 + 1 and faces["y2"].max() <= 640 + 1  # pixels of the upright frame
    assert faces["y1"].min() > 150  # the face sits low in the upright 360x640 frame
