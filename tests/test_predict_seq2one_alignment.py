"""A sequence model sees in predict exactly the frames it saw in training (no one-frame offset).

Training's seq2one windows are ``[t - W, t)`` predicting frame ``t`` (``affectseq.sequences``).
A probe "model" whose output names the frames in its window makes the convention
checkable: for every frame, predict (offline, causal, live) must give what the
same probe gives on the training sample of that target frame.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from affectseq.features.store import FeatureStore, make_labels
from affectseq.features.store_writer import StoreWriter
from affectseq.labels import EXPR_CLASSES_7
from affectseq.predict.outputs import summarize
from affectseq.predict.sequence import SequenceTemporal
from affectseq.predict.stages import ModelBundle, ModelInfo
from affectseq.predict.streaming import LivePredictor
from affectseq.predict.table import FaceObservations, build_frames_table
from affectseq.sequences.dataset import WindowDataset
from affectseq.sequences.windows import WindowSpec

WINDOW = 3
N_FRAMES = 20
GAPS = (4, 9, 10, 11, 15)  # frames without a face; 9-11 is a gap of a whole window


class WindowProbe(torch.nn.Module):
    """Stand-in temporal model: ``va`` = (newest, oldest) frame_idx with a face in its window.

    Feature column 0 holds ``frame_idx + 1`` (so a real frame is never 0). seq2seq:
    every row reports its own frame_idx (NaN at gaps).
    """

    def __init__(self, mode: str = "seq2one"):
        super().__init__()
        self.input_dim = 2
        self.config = SimpleNamespace(mode=mode, bidirectional=False)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        frame = features[..., 0] - 1
        valid = mask.bool()
        if self.config.mode == "seq2seq":
            own = torch.where(valid, frame, torch.full_like(frame, float("nan")))
            return {"va": torch.stack([own, own], dim=-1)}
        newest = torch.where(valid, frame, torch.full_like(frame, -np.inf)).amax(dim=-1)
        oldest = torch.where(valid, frame, torch.full_like(frame, np.inf)).amin(dim=-1)
        return {"va": torch.stack([newest, oldest], dim=-1)}


def _features(frames: np.ndarray) -> np.ndarray:
    return np.stack([frames + 1, np.zeros(len(frames))], axis=1).astype(np.float32)


FACE_FRAMES = np.array([f for f in range(N_FRAMES) if f not in GAPS])


@pytest.fixture(scope="module")
def training_windows(tmp_path_factory: pytest.TempPathFactory) -> dict[int, np.ndarray]:
    """target frame_idx -> the probe's output on training's seq2one sample for that target."""
    writer = StoreWriter(tmp_path_factory.mktemp("store"), feature_dim=2, tasks=("va",), expr_classes=())
    frames = np.arange(N_FRAMES)
    valid = ~np.isin(frames, GAPS)
    labels = make_labels(N_FRAMES, feature_valid=valid, has_face=valid,
                         va=np.zeros((N_FRAMES, 2), np.float32))
    writer.write_video("v", _features(frames).astype(np.float16), labels, {"va": "train"})
    dataset = WindowDataset(FeatureStore(writer.root), ["v"],
                            WindowSpec(mode="seq2one", length=WINDOW, tasks=("va",), pad_start=True))
    probe = WindowProbe()
    out = {}
    for i in range(len(dataset)):
        sample = dataset[i]
        x = torch.from_numpy(sample["features"].astype(np.float32))[None]
        va = probe(x, torch.from_numpy(sample["mask"])[None])["va"][0].numpy()
        out[int(sample["target_frame_idx"])] = va
    return out


def test_training_windows_end_the_frame_before_their_target(training_windows: dict[int, np.ndarray]) -> None:
    # The premise of this file: frame 5 is predicted from frames 2, 3 (4 is a gap), never from 5 itself.
    np.testing.assert_array_equal(training_windows[5], [3, 2])
    np.testing.assert_array_equal(training_windows[3], [2, 0])
    assert 12 not in training_windows  # its window 9-11 has no face: training has no such window


@pytest.mark.parametrize("mode", ["offline", "causal"])
def test_predict_seq2one_windows_equal_the_training_windows(
    training_windows: dict[int, np.ndarray], mode: str
) -> None:
    stage = SequenceTemporal(WindowProbe(), WINDOW)
    va = stage.run_track({"features": _features(FACE_FRAMES)}, FACE_FRAMES / 25, FACE_FRAMES, mode)["va"]
    predicted = {int(f): v for f, v in zip(FACE_FRAMES, va) if not np.isnan(v).any()}
    # A prediction exactly where training has a window, and the same window.
    assert set(predicted) == set(training_windows) & set(FACE_FRAMES.tolist())
    for frame, value in predicted.items():
        np.testing.assert_array_equal(value, training_windows[frame], err_msg=f"frame {frame}")
    no_prediction = FACE_FRAMES[np.isnan(va).any(axis=1)]
    np.testing.assert_array_equal(no_prediction, [0, 12])  # a track's first frame; after a whole-window gap


def test_predict_seq2seq_causal_uses_the_frame_itself() -> None:
    stage = SequenceTemporal(WindowProbe("seq2seq"), WINDOW)
    va = stage.run_track({"features": _features(FACE_FRAMES)}, FACE_FRAMES / 25, FACE_FRAMES, "causal")["va"]
    np.testing.assert_array_equal(va[:, 0], FACE_FRAMES)  # row t of a seq2seq window predicts frame t


class _FrameNumberStage:
    """Frame stage of the live test: the crop's pixel value is the frame_idx."""

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        return {"features": _features(crops[:, 0, 0, 0].astype(np.float32))}


@pytest.mark.parametrize("mode", ["seq2one", "seq2seq"])
def test_live_predictor_equals_predict_causal(training_windows: dict[int, np.ndarray], mode: str) -> None:
    from affectseq.faces import Detection

    stage = SequenceTemporal(WindowProbe(mode), WINDOW)
    bundle = ModelBundle(frame_stage=_FrameNumberStage(), temporal_stage=stage,
                         info=ModelInfo(model_id="probe", kind="sequence", classes=(), has_va=True))
    detection = Detection(box=(0.0, 0.0, 4.0, 4.0), score=0.9, landmarks=None)
    faces = SimpleNamespace(update=lambda f, rgb: [] if f in GAPS else [(1, detection)])
    live = LivePredictor(bundle, faces, aligner=lambda rgb, dets: rgb[None])
    rows = [row for f in range(N_FRAMES) for row in live.process(f, f / 25, np.full((4, 4, 3), f, np.uint8))]
    expected = stage.run_track({"features": _features(FACE_FRAMES)}, FACE_FRAMES / 25, FACE_FRAMES, "causal")
    assert [row["frame_idx"] for row in rows] == FACE_FRAMES.tolist()
    np.testing.assert_array_equal(np.stack([row["va"] for row in rows]), expected["va"])
    if mode == "seq2one":  # and live sees the training window itself
        for row in rows:
            if row["frame_idx"] in training_windows:
                np.testing.assert_array_equal(row["va"], training_windows[row["frame_idx"]])


def test_face_rows_without_a_prediction_have_no_label_and_do_not_count() -> None:
    probs = np.eye(7, dtype=np.float32)[[4, 4, 5]]
    probs[0] = np.nan  # the track's first frame: no prediction
    obs = FaceObservations(frame_idx=np.array([0, 1, 2]), face_id=np.array([1, 1, 2]),
                           boxes=np.zeros((3, 4), np.float32), det_score=np.ones(3, np.float32),
                           expr_prob=probs, va=None)
    obs_lone = FaceObservations(frame_idx=np.array([0]), face_id=np.array([3]),
                                boxes=np.zeros((1, 4), np.float32), det_score=np.ones(1, np.float32),
                                expr_prob=np.full((1, 7), np.nan, np.float32), va=None)
    table = build_frames_table(np.arange(3), np.arange(3) / 25, obs, EXPR_CLASSES_7, has_va=False)
    assert pd.isna(table["label"][0]) and table["label"].tolist()[1:] == ["Happiness", "Sadness"]
    summary = summarize(table, list(EXPR_CLASSES_7), False, video={}, model={}, processing={})
    assert summary["time_share"]["Happiness"] == 0.5 and summary["time_share"]["Sadness"] == 0.5
    lone = build_frames_table(np.arange(1), np.zeros(1), obs_lone, EXPR_CLASSES_7, has_va=False)
    lone_summary = summarize(lone, list(EXPR_CLASSES_7), False, video={}, model={}, processing={})
    assert lone_summary["dominant_expression"] is None and lone_summary["faces"][0]["dominant_expression"] is None
    assert isinstance(lone, pd.DataFrame) and lone["label"].isna().all()


def test_a_seq2one_bundle_end_to_end_leaves_only_each_tracks_first_frame_unpredicted(tmp_path) -> None:
    """Real video, real bundle file: rows, frames.csv, summary, timeline and overlay all accept the empty rows."""
    from affectseq.predict.batch import OutputOptions, predict_one
    from affectseq.predict.model import load_model
    from affectseq.predict.outputs import read_frames_table
    from affectseq.predict.pipeline import PredictOptions

    from test_predict_helpers import ScriptedFaces, box_crops, gray_frames, write_video
    from test_predict_sequence import _bundle_file

    video = write_video(tmp_path / "ramp.mp4", gray_frames(list(np.linspace(10, 240, 16).astype(int))))
    bundle = load_model(_bundle_file(tmp_path, bidirectional=False, mode="seq2one"), device="cpu")
    faces = lambda: ScriptedFaces({1: (8.0, 8.0, 72.0, 72.0)}, lambda f, i: f not in (4, 5))  # noqa: E731
    pred = predict_one(video, tmp_path / "out", bundle, PredictOptions(mode="causal", progress=False),
                       OutputOptions(overlay=True), face_source_factory=faces, aligner=box_crops)
    table = read_frames_table(tmp_path / "out" / "frames.csv")
    rows = table[table.face_id.notna()]
    unpredicted = rows[rows.label.isna()]
    assert unpredicted.frame_idx.tolist() == [0]  # the gap 4-5 is shorter than the window: context remains
    np.testing.assert_allclose(rows[rows.label.notna()].filter(like="prob_").sum(axis=1), 1.0, atol=1e-4)
    assert pred.summary["dominant_expression"] is not None
    assert sum(pred.summary["time_share"].values()) == pytest.approx(1.0, abs=1e-5)
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"frames.csv", "summary.json", "timeline.png",
                                                             "overlay.mp4"}
