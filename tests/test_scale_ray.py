"""``--engine ray`` on a local Ray instance (and ``predict --workers 2``) give the local engine's outputs:
``extract`` (crops and raw videos), ``predict`` and ``data faces``.

One local instance for the module: ``num_cpus=2``, no dashboard, a 150 MB object
store, at most 3 (raw) videos per engine. Time budget: < 120 s on 2 shared cores
(Ray start ~10 s; each task imports torch once).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("ray")

from affectseq.config import load_config
from affectseq.data.abaw import AbawDataset
from affectseq.data.synth import SynthConfig, generate
from affectseq.models.factory import save_frame_model
from affectseq.features.encoders import create_encoder
from affectseq.features.extract import extract_features
from affectseq.features.frame_model import FrameModel
from affectseq.features.store import FeatureStore
from affectseq.labels import EXPR_CLASSES_7
from affectseq.scale.ray_engine import RayOptions, extract_with_ray, init_ray, predict_with_ray

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_local():
    import ray

    init_ray(num_cpus=2, include_dashboard=False, object_store_memory=150 * 1024**2, log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def frame_model() -> FrameModel:
    torch.manual_seed(0)
    return FrameModel(create_encoder("paper_cnn"), tasks=("expr",), expr_classes=EXPR_CLASSES_7).eval()


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 2 raw videos (one of them two-person -> 3 annotated videos) of 24 frames, crops only.
    cfg = load_config(SynthConfig, overrides=["n_videos=2", "n_frames=24", "seed=3", "write_videos=false"])
    root = tmp_path_factory.mktemp("synth")
    generate(root, cfg, workers=1, show_progress=False)
    return root


def test_ray_extract_writes_the_local_store(ray_local, synth_root: Path, frame_model: FrameModel,
                                            tmp_path: Path) -> None:
    data = AbawDataset(synth_root)
    local = extract_features(data, frame_model, tmp_path / "local", batch_size=16, num_workers=0, device="cpu",
                             progress=False)
    # One shard per video: the batches differ from the local run's, the features must not (beyond rounding).
    remote = extract_with_ray(data, frame_model, tmp_path / "ray", batch_size=16, device="cpu",
                              options=RayOptions(n_shards=3), progress=False)
    assert remote.n_written == local.n_written == 3 and remote.n_frames_encoded == local.n_frames_encoded > 0
    a, b = FeatureStore(tmp_path / "local"), FeatureStore(tmp_path / "ray")
    assert a.video_ids() == b.video_ids() and len(a) == 3
    assert {k: v for k, v in a.manifest.items() if k != "videos"} == \
        {k: v for k, v in b.manifest.items() if k != "videos"}
    for vid in a.video_ids():
        assert a.entries[vid] == b.entries[vid]
        np.testing.assert_array_equal(a.labels(vid), b.labels(vid))
        # Float32 sums in other batch compositions may round to the neighbouring float16: <= 1 ulp apart.
        np.testing.assert_array_max_ulp(a.features(vid), b.features(vid), maxulp=1)
        assert np.abs(a.features(vid)).sum() > 0

    again = extract_with_ray(data, frame_model, tmp_path / "ray", batch_size=16, device="cpu", progress=False)
    assert (again.n_skipped, again.n_written) == (3, 0)  # resumable: finished videos are not redone


def test_ray_and_multiprocess_predict_write_the_local_outputs(ray_local, clips_dir: Path, frame_model: FrameModel,
                                                              tmp_path: Path) -> None:
    from affectseq.predict.engines import run_batch
    from affectseq.predict.writers import OutputOptions
    from affectseq.predict.pipeline import PredictOptions
    from affectseq.scale.predict_shards import ModelRequest, predict_parallel

    model_path = save_frame_model(tmp_path / "frame.safetensors", frame_model)
    videos = [clips_dir / "single_face.mp4", clips_dir / "multi_face_pan.mp4"]
    options = PredictOptions(detector="haar", detect_every=8, batch_size=32, progress=False)
    output = OutputOptions(timeline=False)
    request = ModelRequest(str(model_path), backend="torch", device="cpu", smoothing_sec=0.5)
    local = run_batch(videos, tmp_path / "local", request.load(), options, output)
    remote = predict_with_ray(videos, tmp_path / "ray", request, options, output,
                              ray_options=RayOptions(n_shards=2))
    parallel = predict_parallel(videos, tmp_path / "workers", request, options, output, workers=2)
    assert local.count("done") == remote.count("done") == parallel.count("done") == 2
    for video in videos:
        a = tmp_path / "local" / video.stem
        table = (a / "frames.csv").read_text()
        assert len(table.splitlines()) > 40
        for engine in ("ray", "workers"):
            b = tmp_path / engine / video.stem
            assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
            assert (b / "frames.csv").read_text() == table, engine
            sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
            sa.pop("processing", None), sb.pop("processing", None)  # wall times differ
            assert sa == sb, engine
    assert predict_with_ray(videos, tmp_path / "ray", request, options, output).count("skipped") == 2


# -- raw videos: data faces and extract, one Ray task per video ---------------------------------------------------
@pytest.fixture(scope="module")
def raw_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 synthetic videos with per-frame CSVs (the video_csv layout), no crops."""
    from affectseq.cli import main

    root = tmp_path_factory.mktemp("raw") / "videos"
    assert main(["data", "synth", str(root), "--layout", "video_csv", "--videos", "2", "--frames", "24",
                 "--workers", "1", "--no-progress"]) == 0
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and not p.name.endswith(".lock")}


def test_ray_data_faces_writes_the_local_tree(ray_local, raw_videos: Path, clips_dir: Path, tmp_path: Path,
                                              capsys) -> None:
    import shutil

    from affectseq.cli import main
    from affectseq.prepare.face_crops import export_face_crops

    videos = tmp_path / "videos"
    shutil.copytree(raw_videos, videos)
    broken = videos / "train" / "broken.mp4"  # opens, is planned, breaks off: a one-line failure on both engines
    broken.write_bytes((clips_dir / "WolfgangLanger_Pexels.mp4").read_bytes()[:60_000])
    (videos / "train" / "broken.csv").write_text("frame_idx,valence,arousal\n0,0.5,0.1\n1,0.5,0.1\n")
    local = export_face_crops(videos, tmp_path / "local", progress=False)
    assert (local.written, len(local.failures)) == (2, 1) and "broken.mp4" in local.failures[0]
    assert main(["data", "faces", str(videos), "--out", str(tmp_path / "ray"), "--engine", "ray",
                 "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "2 videos cropped" in out and f"failed: {local.failures[0]}" in " ".join(out.split())
    a, b = _tree(tmp_path / "local"), _tree(tmp_path / "ray")
    assert sorted(a) == sorted(b) and sum(name.endswith(".jpg") for name in a) > 10
    assert a == b  # same crops (bytes), annotations, per-folder fps records and finished markers

    assert main(["data", "faces", str(videos), "--out", str(tmp_path / "ray"), "--engine", "ray",
                 "--no-progress"]) == 1
    assert "0 videos cropped (0 crops), 2 finished earlier, 1 failed" in capsys.readouterr().out  # resumes


def test_ray_extract_from_raw_videos_writes_the_local_store(ray_local, raw_videos: Path, frame_model: FrameModel,
                                                            tmp_path: Path, capsys) -> None:
    from affectseq.cli import main
    from affectseq.prepare.video_features import extract_raw_videos

    from test_extract_raw_videos import assert_same_store

    local = extract_raw_videos(raw_videos, frame_model, tmp_path / "local", batch_size=16, num_workers=0,
                               device="cpu", progress=False)
    assert local.n_written == 2 and local.n_frames_encoded > 0
    checkpoint = save_frame_model(tmp_path / "frame.safetensors", frame_model)
    args = ["extract", "--data", str(raw_videos), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "ray"),
            "--engine", "ray", "--device", "cpu", "--batch-size", "16"]
    assert main(args) == 0
    assert "2 videos written, 0 already done (of 2)" in capsys.readouterr().out
    # Same videos, labels, masks and fps; features within float16 rounding. Not bit-equal: a Ray worker runs
    # torch on one thread, this process on the machine's cores, and the float sums differ in their last bits.
    assert_same_store(tmp_path / "local", tmp_path / "ray")
    a, b = FeatureStore(tmp_path / "local"), FeatureStore(tmp_path / "ray")
    assert b.incomplete() is None and b.fps() == a.fps() is not None
    assert main(args) == 0
    assert "0 videos written, 2 already done (of 2)" in capsys.readouterr().out  # resumable
