"""``predict --tta-flip`` (issue #21): each face averaged with its mirror image, on both backends; and the
header's calibration temperature reaching predict's probabilities identically on torch and ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectseq.errors import ConfigError
from affectseq.labels import EXPR_CLASSES_8
from affectseq.predict.model import load_model

from test_predict_helpers import save_tiny_frame_model


@pytest.fixture(scope="module")
def va_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_frame_model(tmp_path_factory.mktemp("tta") / "va8.safetensors", tasks=("expr", "va"),
                                 classes=EXPR_CLASSES_8, seed=3)


def _crops(n: int = 4) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_flip_averages_each_face_with_its_mirror(va_model: Path, backend: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    plain = load_model(va_model, device="cpu", backend=backend)
    flipped = load_model(va_model, device="cpu", backend=backend, tta_flip=True)
    assert flipped.info.extra["tta_flip"] is True and "tta_flip" not in plain.info.extra
    crops = _crops()
    one, mirror = plain.frame_stage(crops), plain.frame_stage(crops[:, :, ::-1])
    out = flipped.frame_stage(crops)
    for key in ("expr_prob", "va"):
        np.testing.assert_allclose(out[key], (one[key] + mirror[key]) / 2, atol=1e-5)
        assert not np.allclose(out[key], one[key], atol=1e-4)  # the mirror really is a different input
    np.testing.assert_allclose(out["expr_prob"].sum(axis=1), 1.0, atol=1e-5)
    # A left-right symmetric face gives the same outputs with and without flipping.
    symmetric = np.concatenate([crops[:, :, :56], crops[:, :, :56][:, :, ::-1]], axis=2)
    np.testing.assert_allclose(flipped.frame_stage(symmetric)["expr_prob"], plain.frame_stage(symmetric)["expr_prob"],
                               atol=1e-5)


def test_flip_is_refused_for_sequence_bundles_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from affectseq.predict import model as predict_model

    # The check comes before a bundle is opened: the file's declared format decides.
    path = save_tiny_frame_model(tmp_path / "m.safetensors")
    monkeypatch.setattr(predict_model, "sniff_model_format", lambda _path: "affectseq.sequence_model")
    with pytest.raises(ConfigError, match="tta-flip"):
        load_model(path, device="cpu", tta_flip=True)


def test_the_header_temperature_reaches_both_backends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """predict's probabilities are softmax(logits / T) with the file's T, the same on torch and ONNX."""
    pytest.importorskip("onnxruntime")
    import torch

    from affectseq.models.factory import load_frame_model, save_frame_model
    from affectseq.features.heads import head_outputs
    from affectseq.features.preprocess import preprocess_faces
    from affectseq.predict.frame_stage import VIDEO_FACE_FRAMING

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    base = save_tiny_frame_model(tmp_path / "base.safetensors", classes=EXPR_CLASSES_8, seed=5)
    model = load_frame_model(base)
    model.expr_temperature = 0.5
    calibrated = save_frame_model(tmp_path / "calibrated.safetensors", model, {"note": "T=0.5"})
    crops = _crops()
    plain_model = load_frame_model(base)
    with torch.no_grad():
        logits = plain_model(preprocess_faces(plain_model.spec, crops, framing=VIDEO_FACE_FRAMING))["expr"]
    expected = head_outputs({"expr": logits / 0.5})["expr_prob"].numpy()
    for backend in ("torch", "onnx"):
        out = load_model(calibrated, device="cpu", backend=backend).frame_stage(crops)["expr_prob"]
        np.testing.assert_allclose(out, expected, atol=1e-4)
    sharper = load_model(base, device="cpu", backend="torch").frame_stage(crops)["expr_prob"]
    assert (out.max(axis=1) > sharper.max(axis=1)).all()  # T < 1 sharpens
    assert (out.argmax(axis=1) == sharper.argmax(axis=1)).all()


def test_serve_form_and_cli_accept_the_flip_option() -> None:
    from affectseq.serve.options import parse_options

    assert parse_options({})["tta_flip"] is False
    assert parse_options({"tta_flip": "true"})["tta_flip"] is True
    from affectseq.cli import build_parser

    args = build_parser().parse_args(["predict", "video.mp4", "--tta-flip"])
    assert args.tta_flip is True


@pytest.mark.slow
def test_predict_cli_tta_flip_on_a_real_clip(tmp_path: Path, clips_dir: Path) -> None:
    """End to end with the shipped default: --tta-flip is recorded in summary.json and changes the
    probabilities of the real faces (but not which faces are found)."""
    import json

    import pandas as pd

    from affectseq.cli import main

    tables = {}
    for flag in ([], ["--tta-flip"]):
        out = tmp_path / ("flip" if flag else "plain")
        assert main(["predict", str(clips_dir / "single_face.mp4"), "-o", str(out), "--no-progress",
                     "--detect-every", "4", *flag]) == 0
        summary = json.loads((out / "single_face" / "summary.json").read_text())
        assert summary["model"].get("tta_flip", False) is bool(flag)
        tables[bool(flag)] = pd.read_csv(out / "single_face" / "frames.csv")
    plain, flip = tables[False], tables[True]
    assert plain["face_id"].notna().tolist() == flip["face_id"].notna().tolist()
    probs = [c for c in plain.columns if c.startswith("prob_")]
    np.testing.assert_allclose(flip[probs].sum(axis=1).dropna(), 1.0, atol=1e-4)
    assert (plain[probs] - flip[probs]).abs().max().max() > 1e-3
