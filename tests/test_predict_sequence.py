"""Sequence bundles (frame encoder + GRU/LSTM, VA head) plug into predict unchanged; causal vs offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from affectseq.errors import ConfigError, InputError
from affectseq.labels import EXPR_CLASSES_7
from affectseq.models.streaming import StreamingPredictor
from affectseq.models.temporal import TemporalConfig, TemporalModel
from affectseq.predict.model import load_model
from affectseq.predict.pipeline import PredictOptions, predict_video_table
from affectseq.predict.sequence import SequenceTemporal
from affectseq.predict.table import frame_columns
from affectseq.models.factory import save_sequence_checkpoint

from test_predict_helpers import ScriptedFaces, box_crops, gray_frames, save_tiny_frame_model, write_video

WINDOW = 6


def _bundle_file(tmp: Path, bidirectional: bool, mode: str = "seq2seq", embed: bool = True) -> Path:
    frame = save_tiny_frame_model(tmp / "frame.safetensors")
    torch.manual_seed(1)
    temporal = TemporalModel(96, {"expr": 7, "va": 2},
                             TemporalConfig(cell="gru", hidden_sizes=(8, 6), bidirectional=bidirectional, mode=mode))
    from affectseq.models.factory import load_frame_model

    info = {"mode": mode, "window": WINDOW, "tasks": ["expr", "va"], "expr_classes": list(EXPR_CLASSES_7),
            "encoder": load_frame_model(frame).spec.to_dict()}
    name = f"seq_{'bi' if bidirectional else 'uni'}_{mode}_{embed}.safetensors"
    return save_sequence_checkpoint(tmp / name, temporal, info, frame_checkpoint=frame if embed else None,
                                    embed_frame=embed)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    levels = list(np.linspace(10, 240, 16).astype(int))
    return write_video(tmp_path_factory.mktemp("seqv") / "ramp.mp4", gray_frames(levels))


def _predict(video: Path, model_path: Path, mode: str):
    bundle = load_model(model_path, device="cpu")
    faces = ScriptedFaces({1: (8.0, 8.0, 72.0, 72.0)}, lambda f, i: f not in (4, 5))
    return bundle, predict_video_table(video, bundle, PredictOptions(mode=mode, progress=False),
                                       face_source=faces, aligner=box_crops)


@pytest.mark.parametrize("bidirectional,mode", [(False, "causal"), (True, "offline"), (False, "offline")])
def test_sequence_bundle_runs_in_predict(tmp_path: Path, video: Path, bidirectional: bool, mode: str) -> None:
    bundle, pred = _predict(video, _bundle_file(tmp_path, bidirectional), mode)
    assert bundle.info.kind == "sequence" and bundle.info.has_va
    table = pred.table
    assert list(table.columns) == frame_columns(EXPR_CLASSES_7, has_va=True)
    faces = table[table.face_id.notna()]
    assert len(faces) == 14 and table.loc[table.face_id.isna(), "valence"].isna().all()
    np.testing.assert_allclose(faces.filter(like="prob_").sum(axis=1), 1.0, atol=1e-5)
    assert faces[["valence", "arousal"]].abs().le(1).all().all()
    assert pred.summary["valence_arousal"]["valence"]["mean"] == pytest.approx(faces.valence.mean(), abs=1e-5)


def test_bidirectional_seq2seq_cannot_stream(tmp_path: Path, video: Path) -> None:
    with pytest.raises(ConfigError, match="offline"):
        _predict(video, _bundle_file(tmp_path, bidirectional=True), "causal")


def test_bundle_without_frame_model_is_a_clear_error(tmp_path: Path) -> None:
    path = _bundle_file(tmp_path, bidirectional=False, embed=False)
    with pytest.raises(InputError, match="no frame model") as err:
        load_model(path, device="cpu")
    assert str(path) in str(err.value)


def _temporal(bidirectional: bool, mode: str = "seq2seq") -> TemporalModel:
    torch.manual_seed(2)
    return TemporalModel(5, {"expr": 7, "va": 2},
                         TemporalConfig(hidden_sizes=(8,), bidirectional=bidirectional, mode=mode)).eval()


def test_causal_outputs_ignore_the_future_offline_use_it() -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(30, 5)).astype(np.float32)
    steps = np.concatenate([np.arange(0, 12), np.arange(15, 33)])  # a 3-frame gap at 12-14
    changed = feats.copy()
    changed[20:] += 3.0
    causal = SequenceTemporal(_temporal(False), WINDOW)
    a = causal.run_track({"features": feats}, steps / 25, steps, "causal")
    b = causal.run_track({"features": changed}, steps / 25, steps, "causal")
    np.testing.assert_allclose(a["expr_prob"][:20], b["expr_prob"][:20], atol=1e-6)
    assert not np.allclose(a["expr_prob"][20:], b["expr_prob"][20:])
    offline = SequenceTemporal(_temporal(True), WINDOW)
    c = offline.run_track({"features": feats}, steps / 25, steps, "offline")
    d = offline.run_track({"features": changed}, steps / 25, steps, "offline")
    assert not np.allclose(c["va"][17:20], d["va"][17:20])  # the window after frame 20 reaches back


@pytest.mark.parametrize("mode", ["seq2seq", "seq2one"])
def test_causal_track_matches_the_live_streaming_predictor(mode: str) -> None:
    """predict's causal pass gives what models.streaming.StreamingPredictor gives frame by frame.

    seq2seq: the output after pushing frame t; seq2one: the output after pushing frame t - 1
    (its window [t - W, t) predicts t), none for the first frame.
    """
    model = _temporal(False, mode)
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(20, 5)).astype(np.float32)
    steps = np.array([s for s in range(23) if s not in (7, 8, 9)])
    ours = SequenceTemporal(model, WINDOW).run_track({"features": feats}, steps / 25, steps, "causal")
    live = StreamingPredictor(model, window=WINDOW, policy="window")
    rows = iter(range(len(feats)))
    previous = None
    for step in range(23):
        if step in (7, 8, 9):
            previous = live.push(None, has_face=False)
            continue
        i = next(rows)
        out = live.push(feats[i])
        expected, previous = (out if mode == "seq2seq" else previous), out
        if expected is None:
            assert np.isnan(ours["expr_prob"][i]).all() and np.isnan(ours["va"][i]).all()
            continue
        np.testing.assert_allclose(ours["expr_prob"][i], expected["expr_prob"], atol=1e-5)
        np.testing.assert_allclose(ours["va"][i], expected["va"], atol=1e-5)


@pytest.mark.parametrize("kind", ["smoothing", "sequence"])
def test_live_predictor_equals_the_causal_pipeline(tmp_path: Path, video: Path, kind: str) -> None:
    from affectseq.io.video import VideoReader
    from affectseq.predict.streaming import LivePredictor

    from test_predict_helpers import brightness_bundle

    bundle = brightness_bundle(0.2) if kind == "smoothing" else load_model(_bundle_file(tmp_path, False), device="cpu")
    present = lambda f, i: f not in (4, 5)  # noqa: E731
    face_box = {1: (8.0, 8.0, 72.0, 72.0)}
    table = predict_video_table(video, bundle, PredictOptions(mode="causal", progress=False),
                                face_source=ScriptedFaces(face_box, present), aligner=box_crops).table
    live = LivePredictor(bundle, ScriptedFaces(face_box, present), aligner=box_crops)
    expected = table[table.face_id.notna()].set_index("frame_idx")
    n_rows = 0
    for frame in VideoReader(video):
        for row in live.process(frame.frame_idx, frame.time_sec, frame.rgb):
            ref = expected.loc[row["frame_idx"]]
            np.testing.assert_allclose(row["expr_prob"], ref.filter(like="prob_").to_numpy(float), atol=1e-5)
            if "va" in row:
                np.testing.assert_allclose(row["va"], ref[["valence", "arousal"]].to_numpy(float), atol=1e-5)
            n_rows += 1
    assert n_rows == len(expected) == 14


def _paper_cnn_bundle(tmp: Path) -> Path:
    """A seq2one bundle around the tutorial's encoder (``paper_cnn`` at 96 px, BatchNorm on its input)."""
    from affectseq.models.factory import save_frame_model
    from affectseq.features.encoders import create_encoder
    from affectseq.features.frame_model import FrameModel

    torch.manual_seed(3)
    encoder = create_encoder("paper_cnn")
    with torch.no_grad():  # non-trivial input statistics, so the exported BatchNorm is really tested
        encoder.input_norm.running_mean.fill_(0.4)
        encoder.input_norm.running_var.fill_(0.06)
    frame = save_frame_model(tmp / "paper_cnn.safetensors", FrameModel(encoder, tasks=["expr"]), {})
    temporal = TemporalModel(300, {"expr": 7, "va": 2}, TemporalConfig(hidden_sizes=(8, 6), mode="seq2one"))
    info = {"mode": "seq2one", "window": WINDOW, "tasks": ["expr", "va"], "expr_classes": list(EXPR_CLASSES_7),
            "encoder": encoder.spec.to_dict()}
    return save_sequence_checkpoint(tmp / "seq_paper_cnn.safetensors", temporal, info, frame_checkpoint=frame)


@pytest.mark.parametrize("encoder", ["test_resnet", "paper_cnn"])
def test_onnx_features_and_predictions_equal_torch(tmp_path: Path, video: Path, encoder: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """auto picks ONNX Runtime on CPU for a bundle's frame encoder too: its features, and the
    predictions the GRU makes from them, equal torch's to 1e-4; the export is cached by the bundle's sha256."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = (_bundle_file(tmp_path, False, mode="seq2one") if encoder == "test_resnet"
            else _paper_cnn_bundle(tmp_path))
    on_torch, on_onnx = load_model(path, device="cpu", backend="torch"), load_model(path, device="cpu")
    assert (on_torch.info.extra["backend"], on_onnx.info.extra["backend"]) == ("torch", "onnx")
    onnx_path = on_onnx.frame_stage.onnx_path
    assert onnx_path.parent == tmp_path / "cache" / "affectseq" / "onnx" and onnx_path.name.endswith("-features.onnx")
    assert onnx_path.name.startswith(on_onnx.info.sha256[:20])
    crops = np.random.default_rng(4).integers(0, 256, (9, 112, 112, 3), dtype=np.uint8)
    ref, got = on_torch.frame_stage(crops)["features"], on_onnx.frame_stage(crops)["features"]
    assert got.shape == ref.shape and np.abs(ref).max() > 0.01 and ref.std(axis=0).max() > 0  # not a constant
    np.testing.assert_allclose(got, ref, atol=1e-4)
    tables = []
    for bundle in (on_torch, on_onnx):
        faces = ScriptedFaces({1: (8.0, 8.0, 72.0, 72.0)}, lambda f, i: f not in (4, 5))
        tables.append(predict_video_table(video, bundle, PredictOptions(progress=False), face_source=faces,
                                          aligner=box_crops).table)
    values = [t.drop(columns=["face_id"]).select_dtypes("number").to_numpy(float) for t in tables]
    assert np.isfinite(values[0]).sum() > 14 * 9  # probabilities and VA on the frames with a face
    np.testing.assert_allclose(values[1], values[0], atol=1e-4, equal_nan=True)
    assert load_model(path, device="cpu").frame_stage.onnx_path == onnx_path  # the cached export


def test_failed_onnx_export_falls_back_to_torch_with_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("onnxruntime")
    import logging

    import affectseq.predict.onnx_backend as onnx_backend

    def broken_export(*args, **kwargs):
        raise RuntimeError("exporter says no\nsecond line")

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(onnx_backend, "export_onnx", broken_export)
    path = _bundle_file(tmp_path, False, mode="seq2one")
    with caplog.at_level(logging.WARNING):
        bundle = load_model(path, device="cpu", backend="onnx")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "exporter says no" in warnings[0] and "second line" not in warnings[0]
    assert bundle.info.extra["backend"] == "torch"
    crops = np.random.default_rng(5).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    assert bundle.frame_stage(crops)["features"].shape == (3, 96)
