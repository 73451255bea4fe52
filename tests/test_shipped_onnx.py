"""The ONNX files shipped in affectseq/weights: provenance (sha256 of the weights each came from), outputs equal
to the torch networks they were exported from, and the ONNX Runtime MTCNN's detections equal torch's on real clips.

Re-export with ``python scripts/export_shipped_onnx.py`` when a shipped weights file changes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from affectseq.faces.mtcnn import MTCNNDetector
from affectseq.faces.mtcnn_nets import TorchMTCNNNets, mtcnn_weights_dir
from affectseq.faces.mtcnn_onnx import NETS, OnnxMTCNNNets, shipped_onnx_path
from affectseq.features.encoders import EncoderSpec
from affectseq.features.preprocess import preprocess_batch, preprocess_faces, resize_matrices
from affectseq.features.shipped import default_model_path, weights_dir
from affectseq.io.video import VideoReader
from affectseq.predict.model import load_model
from affectseq.utils.hashing import sha256_file
from affectseq.utils.onnx_files import SOURCE_SHA256, file_metadata

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _source_of(onnx_path: Path) -> Path:
    """The weights file a shipped ONNX file must have been exported from."""
    if onnx_path.name.startswith("mtcnn_"):
        return mtcnn_weights_dir() / f"{onnx_path.stem.removeprefix('mtcnn_')}.lz4"
    return onnx_path.with_suffix(".safetensors")


def test_every_shipped_onnx_records_the_sha256_of_the_weights_it_came_from() -> None:
    shipped = sorted(weights_dir().glob("*.onnx"))
    names = {p.name for p in shipped}
    assert {f"mtcnn_{net}.onnx" for net in NETS} <= names
    assert default_model_path().with_suffix(".onnx").name in names, (
        "the default model has no shipped ONNX file: run python scripts/export_shipped_onnx.py")
    for path in shipped:
        source = _source_of(path)
        assert source.is_file(), f"{path.name}: its weights file {source} is not there"
        recorded = file_metadata(path).get(SOURCE_SHA256)
        assert recorded == sha256_file(source), (
            f"{path.name} was exported from other weights than the shipped {source.name}: "
            "run python scripts/export_shipped_onnx.py")


def test_the_default_model_runs_from_its_shipped_onnx_without_exporting(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))       # an empty export cache
    bundle = load_model("default", backend="onnx")
    assert bundle.frame_stage.onnx_path == default_model_path().with_suffix(".onnx")
    assert not (tmp_path / "affectseq" / "onnx").exists() or not any((tmp_path / "affectseq" / "onnx").iterdir())
    crops = np.random.default_rng(1).integers(0, 256, (9, 112, 112, 3), dtype=np.uint8)
    want = load_model("default", backend="torch", device="cpu").frame_stage(crops)["expr_prob"]
    np.testing.assert_allclose(bundle.frame_stage(crops)["expr_prob"], want, atol=1e-5)


def test_a_stale_onnx_beside_a_checkpoint_is_not_used(tmp_path: Path, monkeypatch) -> None:
    """An ONNX file whose recorded sha256 is another checkpoint's is ignored (the checkpoint is exported instead)."""
    import shutil

    from test_predict_helpers import save_tiny_frame_model

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = save_tiny_frame_model(tmp_path / "tiny.safetensors")
    shutil.copy(default_model_path().with_suffix(".onnx"), tmp_path / "tiny.onnx")
    stage = load_model(model, backend="onnx").frame_stage
    assert stage.onnx_path.parent == tmp_path / "cache" / "affectseq" / "onnx"
    assert file_metadata(stage.onnx_path)[SOURCE_SHA256] == sha256_file(model)


@pytest.mark.parametrize("net,shape", [("pnet", (1, 3, 12, 12)), ("pnet", (1, 3, 101, 177)),
                                       ("rnet", (7, 3, 24, 24)), ("onet", (5, 3, 48, 48))])
def test_onnx_mtcnn_networks_equal_torch(net: str, shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(sum(shape)).uniform(-1, 1, shape).astype(np.float32)
    got = getattr(OnnxMTCNNNets(), net)(x)
    want = getattr(TorchMTCNNNets(), net)(x)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert shipped_onnx_path(net).is_file()


@pytest.mark.parametrize("clip", ["single_face.mp4", "multi_face_pan.mp4", "face_noface.mov",
                                  "WolfgangLanger_Pexels.mp4"])
def test_onnx_detector_finds_the_same_faces_as_torch(clip: str, clips_dir: Path) -> None:
    """Known answer: per frame, the same faces, boxes and landmarks to float rounding (well under a pixel)."""
    with VideoReader(clips_dir / clip, stride=12) as reader:
        frames = [f.rgb for f in reader][:12]
    on_onnx, on_torch = MTCNNDetector(backend="onnx"), MTCNNDetector(backend="torch")
    assert on_onnx.backend == "onnx" and MTCNNDetector().backend == "onnx"   # the CPU default
    found = 0
    for frame in frames:
        got, want = on_onnx.detect(frame), on_torch.detect(frame)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.box, b.box, atol=1e-2)
            np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-2)
            assert a.score == pytest.approx(b.score, abs=1e-4)
        # refine (the tracker's O-Net re-fit) too
        boxes = [d.box for d in want]
        for a, b in zip(on_onnx.refine(frame, boxes), on_torch.refine(frame, boxes)):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(a.box, b.box, atol=1e-2)
        found += len(want)
    assert found > 0 or clip == "no_face.mp4"


def test_detect_batch_equals_detect_per_frame(clips_dir: Path) -> None:
    """R-/O-Net batched across frames give each frame's own detections (frames of two sizes mixed)."""
    frames = []
    for clip in ("multi_face_pan.mp4", "single_face.mp4", "no_face.mp4"):
        with VideoReader(clips_dir / clip, stride=16) as reader:
            frames += [f.rgb for f in reader][:3]
    detector = MTCNNDetector()
    batched = detector.detect_batch(frames)
    assert sum(map(len, batched)) >= 15
    for frame, got in zip(frames, batched):
        want = detector.detect(frame)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.box, b.box, atol=1e-3)
            assert a.score == pytest.approx(b.score, abs=1e-5)


@pytest.mark.parametrize("input_size,grayscale,framing", [(80, True, "fer2013"), (64, False, "abaw112"),
                                                         (112, True, "abaw112"), (128, False, "fer2013"),
                                                         (96, True, "as_given")])
def test_resize_matrices_preprocess_like_preprocess_faces(input_size: int, grayscale: bool, framing: str) -> None:
    """The exported graph's preprocessing (matrix resize) equals preprocess_faces: shrinking, upscaling, framings."""
    spec = EncoderSpec(name="x", input_size=input_size, in_chans=3, grayscale=grayscale,
                       mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), feature_dim=8, framing=framing)
    crops = np.random.default_rng(input_size).integers(0, 256, (4, 112, 112, 3), dtype=np.uint8)
    mats = resize_matrices(spec, (112, 112), "abaw112")
    want = preprocess_faces(spec, crops, framing="abaw112")
    if mats is None:
        got = preprocess_batch(spec, torch.from_numpy(crops), "abaw112", lambda x, hw, aa: 1 / 0)
    else:
        got = preprocess_batch(spec, torch.from_numpy(crops), "abaw112", lambda x, hw, aa: mats[0] @ x @ mats[1].T)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=0)


@pytest.mark.slow
def test_predict_on_onnx_equals_torch_when_every_frame_is_detected(clips_dir: Path) -> None:
    """Known answer, whole pipeline: with a detection on every frame, frames.csv of the default (ONNX Runtime)
    path equals --backend torch's: same rows and labels, probabilities within 1e-4.

    (Between detections the tracker re-fits each box from the previous one, which carries float-rounding
    differences of the two runtimes from frame to frame; docs/results.md measures that on the default settings.)
    """
    from affectseq.api import predict_video

    clip = clips_dir / "single_face.mp4"
    on_onnx = predict_video(clip, detect_every=1)
    on_torch = predict_video(clip, detect_every=1, backend="torch", device="cpu")
    assert on_onnx.attrs["summary"]["model"]["backend"] == "onnx"
    assert on_torch.attrs["summary"]["model"]["backend"] == "torch"
    assert list(on_onnx["frame_idx"]) == list(on_torch["frame_idx"]) and len(on_onnx) == 72
    assert list(on_onnx["label"]) == list(on_torch["label"])
    probs = [c for c in on_onnx.columns if c.startswith("prob_")]
    np.testing.assert_allclose(on_onnx[probs].to_numpy(float), on_torch[probs].to_numpy(float), atol=1e-4)
    boxes = ["x1", "y1", "x2", "y2"]
    np.testing.assert_allclose(on_onnx[boxes].to_numpy(float), on_torch[boxes].to_numpy(float), atol=0.05)
