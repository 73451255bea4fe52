"""End to end, as docs/own_videos.md tells a user (issue #13's done-when):

videos + CSVs -> data faces -> train frames -> extract -> train sequence (GRU, expr + VA) -> predict --model,
and extract straight from the raw videos giving the same store as through the crops.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from affectseq.cli import main
from affectseq.data.abaw import AbawDataset
from affectseq.labels import EXPR_CLASSES_8
from affectseq.predict.table import prob_column
from affectseq.prepare.face_crops import default_crops_dir
from affectseq.utils.hashing import sha256_file

from test_extract_raw_videos import assert_same_store

TINY_CNN = ["encoder.name=resnet18", "encoder.input_size=48", "epochs=1", "batch_size=16", "threads=1"]
TINY_GRU = ["window=8", "model.hidden_sizes=[8]", "epochs=2", "batch_size=16", "threads=1", "device=cpu"]


def synth(root: Path, videos: int, seed: int) -> None:
    assert main(["data", "synth", str(root), "--layout", "video_csv", "--videos", str(videos), "--frames", "40",
                 "--seed", str(seed), "--workers", "1", "--no-progress"]) == 0


@pytest.mark.slow
def test_own_videos_to_a_gru_that_predicts(tmp_path, capsys) -> None:
    videos = tmp_path / "my_videos"
    synth(videos, videos=3, seed=0)
    crops = default_crops_dir(videos)  # where train frames looks for them: it reuses what data faces made
    assert main(["data", "faces", str(videos), "--out", str(crops), "--no-progress"]) == 0
    ds = AbawDataset(crops, strict=True)
    # Rendered cartoon faces: MTCNN finds some of them, which is all the pipeline needs here.
    assert all(len(ds.frame_set("VA", split)) > 0 for split in ds.splits("VA"))
    capsys.readouterr()

    cnn, gru = tmp_path / "runs" / "cnn", tmp_path / "runs" / "gru"
    assert main(["train", "frames", "--data", str(videos), "--task", "multi", "--out", str(cnn), *TINY_CNN]) == 0
    assert f"reusing the face crops in {crops}" in capsys.readouterr().out

    store, direct = tmp_path / "stores" / "cnn", tmp_path / "stores" / "direct"
    assert main(["extract", "--data", str(crops), "--checkpoint", str(cnn), "--out", str(store),
                 "--workers", "1", "--device", "cpu"]) == 0
    assert main(["extract", "--data", str(videos), "--checkpoint", str(cnn), "--out", str(direct),
                 "--workers", "1", "--device", "cpu"]) == 0
    assert_same_store(store, direct)

    assert main(["train", "sequence", "--store", str(store), "--task", "multi", "--out", str(gru), *TINY_GRU]) == 0

    held_back = tmp_path / "new"
    synth(held_back, videos=1, seed=7)  # a video none of the models saw
    video = next(held_back.rglob("*.mp4"))
    out = tmp_path / "pred"
    assert main(["predict", str(video), "--model", str(gru), "--out", str(out), "--device", "cpu",
                 "--no-progress"]) == 0
    result = out / video.stem
    table = pd.read_csv(result / "frames.csv")
    assert {prob_column(c) for c in EXPR_CLASSES_8} | {"valence", "arousal", "label"} <= set(table.columns)
    faces = table[table["face_id"].notna()]
    # A seq2one GRU predicts a face's frame once it has a window of history (the first few have none yet).
    predicted = faces[faces["valence"].notna()]
    assert len(predicted) >= len(faces) // 2 and predicted[["arousal", "label"]].notna().all().all()
    assert predicted[["valence", "arousal"]].abs().le(1).all().all()
    summary = json.loads((result / "summary.json").read_text())
    bundle = Path(summary["model"]["source"])
    assert summary["model"]["kind"] == "sequence" and summary["model"]["has_va"]
    assert bundle.parent == gru and summary["model"]["sha256"] == sha256_file(bundle)
    assert summary["model"]["classes"] == list(EXPR_CLASSES_8)

    # Self-contained: the bundle still predicts after the frame run folder is gone.
    shutil.rmtree(cnn)
    assert main(["predict", str(video), "--model", str(gru), "--out", str(tmp_path / "pred2"), "--device", "cpu",
                 "--no-progress"]) == 0
