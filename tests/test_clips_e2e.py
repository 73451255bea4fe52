"""End to end on a generated clip dataset, with no window or length overrides (issue #19's done-when):

data synth --layout clip_folders -> data inspect names the layout -> extract --checkpoint default straight
from the clips -> train sequence (clip-level by default) -> evaluate reports UAR/WAR -> predict --model on a
held-back clip writes clip_label (and clips.csv).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectseq.cli import main


@pytest.mark.slow
def test_clip_folders_to_a_clip_label(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clips = tmp_path / "clips"
    assert main(["data", "synth", str(clips), "--layout", "clip_folders", "--videos", "16", "--seed", "3",
                 "--workers", "1", "--no-progress"]) == 0
    # One clip of the training split is held back from everything below.
    held_back = tmp_path / "held_back"
    held_back.mkdir()
    first = sorted((clips / "train").rglob("*.mp4"))[0]
    shutil.move(str(first), str(held_back / first.name))
    (clips / "clips.csv").unlink()  # the synth's clip_list view of the same clips would name the moved clip
    capsys.readouterr()

    assert main(["data", "inspect", str(clips)]) == 0
    assert "clip_folders" in capsys.readouterr().out

    store = tmp_path / "store"
    assert main(["extract", "--data", str(clips), "--checkpoint", "default", "--out", str(store),
                 "--workers", "1", "--device", "cpu"]) == 0
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["label_level"] == "clip" and len(manifest["videos"]) == 15

    run = tmp_path / "gru"
    assert main(["train", "sequence", "--store", str(store), "--out", str(run), "--device", "cpu"]) == 0
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["samples"]["mode"] == "clip" and summary["samples"]["length"] == 16

    report = tmp_path / "eval"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--split", "validation", "--out", str(report)]) == 0
    assert "UAR=" in capsys.readouterr().out
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["level"] == "clip" and 0.0 <= metrics["uar"] <= 1.0 and 0.0 <= metrics["war"] <= 1.0
    lo, hi = metrics["clip"]["ci95"]["war"]
    assert lo <= metrics["war"] <= hi
    pred = np.load(run / "val_predictions.npz")
    war = float(np.mean(pred["expr_prob"].argmax(1) == pred["expr_true"]))
    assert metrics["war"] == pytest.approx(war)  # the report scores exactly the run's clip predictions

    out = tmp_path / "pred"
    assert main(["predict", str(held_back), "--model", str(run), "--out", str(out), "--no-progress",
                 "--device", "cpu"]) == 0
    video_summary = json.loads((out / first.stem / "summary.json").read_text())
    classes = manifest["expr_classes"]
    assert video_summary["frames_with_face"] > 0  # the rendered face is found in this clip (seed 3)
    assert video_summary["clip_label"] in classes and list(video_summary["clip_probabilities"]) == classes
    table = pd.read_csv(out / "clips.csv")
    assert len(table) == 1 and table["video"][0].endswith(first.name)
