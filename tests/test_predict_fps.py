"""A sequence model's window covers the same seconds at any video frame rate (#13): resampled by time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from affectseq.labels import EXPR_CLASSES_7
from affectseq.predict.pipeline import PredictOptions, predict_video_table
from affectseq.predict.sequence import SequenceTemporal
from affectseq.predict.stages import ModelBundle, ModelInfo

from test_predict_helpers import ScriptedFaces, box_crops, gray_frames, save_tiny_frame_model, write_video
from test_predict_seq2one_alignment import WindowProbe

N_FRAMES = 24


def _video(tmp: Path, fps: int) -> Path:
    # Gray level 10 * frame_idx: the probe's frame stage reads each frame's number back.
    return write_video(tmp / f"count_{fps}.mp4", gray_frames([10 * i for i in range(N_FRAMES)]), fps=fps)


class _FrameNumber:
    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        frame = np.round(crops.reshape(len(crops), -1).mean(axis=1) / 10)
        return {"features": np.stack([frame + 1, np.zeros(len(frame))], axis=1).astype(np.float32)}


@pytest.mark.parametrize(("fps", "window"), [(25, 3), (50, 6)])
def test_seq2one_window_spans_the_trained_seconds(tmp_path: Path, fps: int, window: int) -> None:
    """Trained at 25 fps on 3-frame windows (0.12 s): a 50 fps video gets 6-frame windows."""
    stage = SequenceTemporal(WindowProbe(), 3, trained_fps=25.0, window_sec=0.12)
    bundle = ModelBundle(_FrameNumber(), stage, ModelInfo("probe", "sequence", (), has_va=True))
    faces = ScriptedFaces({1: (8.0, 8.0, 72.0, 72.0)})
    pred = predict_video_table(_video(tmp_path, fps), bundle, PredictOptions(progress=False),
                               face_source=faces, aligner=box_crops)
    rows = pred.table.set_index("frame_idx")
    t = np.arange(1, N_FRAMES)
    np.testing.assert_array_equal(rows.loc[t, "valence"], t - 1)  # newest frame in the window of t
    np.testing.assert_array_equal(rows.loc[t, "arousal"], np.maximum(t - window, 0))  # oldest: W frames back
    temporal = pred.summary["processing"]["temporal"]
    assert temporal["window_frames"] == window and temporal["video_fps"] == pytest.approx(fps, rel=1e-3)
    assert temporal["trained_fps"] == 25.0 and temporal["window_sec"] == pytest.approx(0.12)


def _bundle_file(tmp: Path, fps: float | None) -> Path:
    from affectseq.models.factory import load_frame_model
    from affectseq.models.factory import save_sequence_checkpoint
    from affectseq.models.temporal import TemporalConfig, TemporalModel

    frame = save_tiny_frame_model(tmp / "frame.safetensors")
    torch.manual_seed(1)
    temporal = TemporalModel(96, {"expr": 7, "va": 2}, TemporalConfig(hidden_sizes=(8,), mode="seq2one"))
    info = {"mode": "seq2one", "window": 4, "tasks": ["expr", "va"], "expr_classes": list(EXPR_CLASSES_7),
            "encoder": load_frame_model(frame).spec.to_dict(), "fps": fps}
    return save_sequence_checkpoint(tmp / f"seq_{fps}.safetensors", temporal, info, frame_checkpoint=frame)


@pytest.mark.parametrize("fps", [25, 50])
def test_bundle_fps_from_the_file_sets_the_window_and_is_reported(tmp_path: Path, fps: int) -> None:
    from affectseq.predict.model import load_model
    from affectseq.predict.outputs import format_summary

    video = _video(tmp_path, fps)
    faces = ScriptedFaces({1: (8.0, 8.0, 72.0, 72.0)})
    recorded = load_model(_bundle_file(tmp_path, 25.0), device="cpu")
    pred = predict_video_table(video, recorded, PredictOptions(progress=False), face_source=faces, aligner=box_crops)
    temporal = pred.summary["processing"]["temporal"]
    assert temporal["window_frames"] == 4 * fps // 25 and temporal["trained_fps"] == 25.0
    assert f"{4 * fps // 25} frames at {fps:.2f} fps (trained at 25.00 fps)" in format_summary(pred.summary)
    assert pred.summary["model"]["trained_fps"] == 25.0

    old = load_model(_bundle_file(tmp_path, None), device="cpu")  # no training fps: frames as recorded
    pred = predict_video_table(video, old, PredictOptions(progress=False), face_source=faces, aligner=box_crops)
    assert pred.summary["processing"]["temporal"]["window_frames"] == 4
    assert "no training fps recorded in the bundle: window kept at 4 frames" in format_summary(pred.summary)
