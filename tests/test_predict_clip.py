"""A clip-trained bundle in predict: one clip label in summary.json; causal, live and offline agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from affectseq.models.temporal import TemporalConfig, TemporalModel
from affectseq.models.factory import save_sequence_checkpoint
from affectseq.predict.clip import ClipTemporal, clip_summary
from affectseq.predict.model import load_model
from affectseq.predict.pipeline import PredictOptions, predict_video_table
from affectseq.predict.stages import run_causal
from affectseq.predict.table import prob_column

from test_predict_helpers import ScriptedFaces, box_crops, gray_frames, save_tiny_frame_model, write_video

CLASSES = ("calm", "pain", "surprise")  # a study's own classes


def _clip_bundle(tmp: Path) -> Path:
    frame = save_tiny_frame_model(tmp / "frame.safetensors")
    torch.manual_seed(3)
    temporal = TemporalModel(96, {"expr": 3}, TemporalConfig(cell="gru", hidden_sizes=(8,), mode="clip"))
    from affectseq.models.factory import load_frame_model

    info = {"mode": "clip", "window": 4, "tasks": ["expr"], "expr_classes": list(CLASSES),
            "encoder": load_frame_model(frame).spec.to_dict(), "fps": 25.0}
    return save_sequence_checkpoint(tmp / "clip.safetensors", temporal, info, frame_checkpoint=frame)


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("clipbundle")
    video = write_video(tmp / "clip.mp4", gray_frames(list(np.linspace(20, 230, 14).astype(int))))
    return video, _clip_bundle(tmp)


def _predict(video: Path, model: Path, mode: str):
    bundle = load_model(model, device="cpu")
    faces = ScriptedFaces({1: (8.0, 8.0, 72.0, 72.0)}, lambda f, i: f not in (3, 9))
    return predict_video_table(video, bundle, PredictOptions(mode=mode, progress=False), face_source=faces,
                               aligner=box_crops)


def test_clip_bundle_gives_one_label_per_clip(clip_files):
    video, model = clip_files
    offline = _predict(video, model, "offline")
    faces = offline.table[offline.table.face_id.notna()]
    probs = faces[[prob_column(c) for c in CLASSES]].to_numpy()
    assert len(faces) == 12 and np.allclose(probs, probs[0])  # every row holds its track's clip prediction
    summary = offline.summary
    assert summary["clip_label"] == CLASSES[int(np.argmax(probs[0]))]
    assert list(summary["clip_probabilities"]) == list(CLASSES)
    assert sum(summary["clip_probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert summary["processing"]["temporal"]["kind"] == "clip model"
    json.dumps(summary)  # JSON-able as written
    # Causal: the last row has seen the whole track, so it is the offline clip prediction.
    causal = _predict(video, model, "causal")
    assert causal.summary["clip_label"] == summary["clip_label"]
    last = causal.table[causal.table.face_id.notna()].iloc[-1][[prob_column(c) for c in CLASSES]]
    np.testing.assert_allclose(last.to_numpy(np.float64), probs[0], atol=1e-5)


def test_live_steps_equal_causal_rows_and_gaps_are_masked():
    torch.manual_seed(4)
    model = TemporalModel(5, {"expr": 3}, TemporalConfig(hidden_sizes=(6,))).eval()
    stage = ClipTemporal(model, frames=4)
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(7, 5)).astype(np.float32)
    steps = np.array([2, 3, 4, 7, 8, 9, 10])  # a gap of two frames after the third face
    times = steps / 25.0
    batched = stage.run_track({"features": feats}, times, steps, "causal")
    stepped = run_causal(stage, {"features": feats}, times, steps)
    np.testing.assert_allclose(batched["expr_prob"], stepped["expr_prob"], atol=1e-6)
    # The last row: positions centred over the 9-frame span (0..8), the gaps (3, 4) masked.
    x = np.zeros((1, 4, 5), np.float32)
    m = np.zeros((1, 4), bool)
    dense_rows = {0: 0, 1: 1, 2: 2, 5: 3, 6: 4, 7: 5, 8: 6}
    for k, p in enumerate([1, 3, 5, 7]):
        if p in dense_rows:
            x[0, k], m[0, k] = feats[dense_rows[p]], True
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(x), torch.from_numpy(m))["expr"], -1).numpy()[0]
    np.testing.assert_allclose(batched["expr_prob"][-1], expected, atol=1e-6)


def test_clip_summary_takes_the_track_with_most_faces_and_handles_no_face():
    import pandas as pd

    cols = [prob_column(c) for c in CLASSES]
    table = pd.DataFrame({"frame_idx": [0, 1, 1, 2], "face_id": [1.0, 1.0, 2.0, 2.0],
                          cols[0]: [0.1, 0.1, 0.7, 0.7], cols[1]: [0.8, 0.8, 0.2, 0.2], cols[2]: [0.1, 0.1, 0.1, 0.1]})
    assert clip_summary(table, CLASSES)["clip_face_id"] == 1  # a tie on rows: the lowest face id
    table.loc[len(table)] = {"frame_idx": 3, "face_id": 2.0, cols[0]: 0.7, cols[1]: 0.2, cols[2]: 0.1}
    out = clip_summary(table, CLASSES)
    assert out["clip_face_id"] == 2 and out["clip_label"] == "calm"
    empty = table.assign(face_id=np.nan)
    assert clip_summary(empty, CLASSES)["clip_label"] is None


def test_clips_csv_has_one_row_per_input_clip_in_order(tmp_path: Path):
    import pandas as pd

    from affectseq.predict.batch import VideoOutcome
    from affectseq.predict.clip import write_clips_csv

    outcomes = []
    for name, label in (("b", "pain"), ("a", "calm")):
        out = tmp_path / name
        out.mkdir()
        probs = {c: (0.8 if c == label else 0.1) for c in CLASSES}
        (out / "summary.json").write_text(json.dumps({"clip_label": label, "clip_probabilities": probs,
                                                      "clip_face_id": 0, "frames_processed": 72,
                                                      "frames_with_face": 70}))
        outcomes.append(VideoOutcome(Path(f"/clips/{name}.mp4"), out, "done"))
    outcomes.append(VideoOutcome(Path("/clips/bad.mp4"), tmp_path / "bad", "failed", "bad.mp4: not a video"))
    path = write_clips_csv(tmp_path, outcomes)
    table = pd.read_csv(path)
    assert table["video"].tolist() == ["/clips/b.mp4", "/clips/a.mp4", "/clips/bad.mp4"]
    assert table["clip_label"].tolist()[:2] == ["pain", "calm"] and pd.isna(table["clip_label"][2])
    assert table.loc[0, prob_column("pain")] == pytest.approx(0.8) and table["error"][2] == "bad.mp4: not a video"
    # A frame model's summaries have no clip label: no clips.csv.
    (tmp_path / "a" / "summary.json").write_text(json.dumps({"frames_processed": 72}))
    assert write_clips_csv(tmp_path / "x", outcomes[1:2]) is None


def test_causal_and_live_sample_at_most_the_last_causal_span_frames(monkeypatch):
    import affectseq.predict.clip as clip_module

    monkeypatch.setattr(clip_module, "CAUSAL_SPAN", 5)
    torch.manual_seed(5)
    model = TemporalModel(3, {"expr": 3}, TemporalConfig(hidden_sizes=(4,))).eval()
    stage = ClipTemporal(model, frames=4)
    feats = np.random.default_rng(1).normal(size=(9, 3)).astype(np.float32)
    steps = np.arange(9)
    batched = stage.run_track({"features": feats}, steps / 25.0, steps, "causal")
    stepped = run_causal(stage, {"features": feats}, steps / 25.0, steps)
    np.testing.assert_allclose(batched["expr_prob"], stepped["expr_prob"], atol=1e-6)
    # The last row sees frames 4..8 only: the same as a track made of those frames alone.
    alone = stage.run_track({"features": feats[4:]}, steps[4:] / 25.0, steps[4:], "offline")
    np.testing.assert_allclose(batched["expr_prob"][-1], alone["expr_prob"][0], atol=1e-6)
