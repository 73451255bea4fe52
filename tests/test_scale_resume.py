"""``kill -9`` in the middle of ``affectseq extract``, then a re-run: finished videos are kept, nothing corrupt.

A real subprocess killed by SIGKILL (no cleanup handlers run). Time budget: < 90 s
on 2 shared cores (4 synthetic videos of 48 frames, one small-batch extraction and
its resumption).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from affectseq.config import load_config
from affectseq.data.synth import SynthConfig, generate
from affectseq.models.factory import save_frame_model
from affectseq.features.encoders import create_encoder
from affectseq.features.frame_model import FrameModel
from affectseq.features.store import FeatureStore
from affectseq.labels import EXPR_CLASSES_7

N_VIDEOS = 4


def _extract_cmd(data: Path, ckpt: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "affectseq", "extract", "--data", str(data), "--checkpoint", str(ckpt),
            "--out", str(out), "--workers", "0", "--batch-size", "4", "--device", "cpu"]


def _committed(videos: Path) -> dict[str, os.stat_result]:
    """Commit markers (``<stem>.json``) and the stat of each committed features file."""
    out = {}
    for marker in videos.glob("*.json"):
        entry = json.loads(marker.read_text())
        out[entry["video_id"]] = (videos.parent / entry["features_file"]).stat()
    return out


@pytest.mark.slow
def test_kill_9_mid_extract_then_rerun_keeps_finished_videos(tmp_path: Path) -> None:
    cfg = load_config(SynthConfig, overrides=[f"n_videos={N_VIDEOS}", "n_frames=48", "seed=5", "write_videos=false",
                                              "two_person_fraction=0"])
    data = tmp_path / "data"
    generate(data, cfg, workers=1, show_progress=False)
    torch.manual_seed(0)
    ckpt = save_frame_model(tmp_path / "frame.safetensors",
                            FrameModel(create_encoder("paper_cnn"), tasks=("expr",), expr_classes=EXPR_CLASSES_7))
    store, videos = tmp_path / "store", tmp_path / "store" / "videos"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_extract_cmd(data, ckpt, store), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not (videos.is_dir() and list(videos.glob("*.json"))):
        assert proc.poll() is None, f"extract ended before the kill: {proc.stdout.read().decode()[-500:]}"
        assert time.monotonic() < deadline, "no video committed within 120 s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    before = _committed(videos)
    assert 1 <= len(before) < N_VIDEOS, "the kill must land mid-run"
    # What a killed run leaves: committed videos whose arrays are complete, and at most hidden temp files.
    stems = {marker.name.removesuffix(".json") for marker in videos.glob("*.json")}
    for path in videos.iterdir():
        stem = path.name.removesuffix(".json").removesuffix(".features.npy").removesuffix(".labels.npy")
        assert path.name.startswith(".") or stem in stems, f"{path.name}: visible file of an unfinished video"
    for vid in before:
        entry = json.loads((videos / f"{vid}.json").read_text())
        feats = np.load(store / entry["features_file"], mmap_mode="r")
        labels = np.load(store / entry["labels_file"])
        assert feats.shape[0] == labels.shape[0] == entry["n_frames"]
    json.loads((store / "manifest.json").read_text())  # the manifest is always a whole file

    rerun = subprocess.run(_extract_cmd(data, ckpt, store), env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-800:]
    assert f"{N_VIDEOS - len(before)} videos written, {len(before)} already done" in rerun.stdout
    after = _committed(videos)
    assert sorted(after) == sorted(FeatureStore(store).video_ids()) and len(after) == N_VIDEOS
    for vid, stat in before.items():  # not redone: the very same file, untouched
        assert (after[vid].st_ino, after[vid].st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    final = FeatureStore(store)
    for vid in final.video_ids():
        labels = final.labels(vid)
        feats = np.asarray(final.features(vid), dtype=np.float32)
        assert labels["feature_valid"].any() and np.all(np.abs(feats[labels["feature_valid"]]).sum(1) > 0)
