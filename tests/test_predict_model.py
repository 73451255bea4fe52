"""Model loading for predict: frame models with/without VA, ONNX backend parity, device and option checks."""

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
    return save_tiny_frame_model(tmp_path_factory.mktemp("m") / "va8.safetensors", tasks=("expr", "va"),
                                 classes=EXPR_CLASSES_8)


def _crops(n: int = 5) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


def test_frame_model_info_and_outputs(va_model: Path) -> None:
    bundle = load_model(va_model, device="cpu", smoothing_sec=1.5)
    info = bundle.info
    assert info.kind == "frame" and info.classes == EXPR_CLASSES_8 and info.has_va
    assert info.extra["smoothing_sec"] == 1.5 and bundle.temporal_stage.window_sec == 1.5
    assert len(info.sha256) == 64 and info.model_id == "va8.safetensors"
    out = bundle.frame_stage(_crops())
    assert out["expr_prob"].shape == (5, 8) and out["va"].shape == (5, 2)
    np.testing.assert_allclose(out["expr_prob"].sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(out["va"]).max() <= 1.0


def test_onnx_backend_matches_torch(va_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    torch_bundle = load_model(va_model, device="cpu", backend="torch")
    assert torch_bundle.info.extra["backend"] == "torch"
    torch_out = torch_bundle.frame_stage(_crops())
    onnx_bundle = load_model(va_model, backend="onnx")
    assert onnx_bundle.frame_stage.onnx_path.parent == tmp_path / "affectseq" / "onnx"
    onnx_out = onnx_bundle.frame_stage(_crops())
    for key in ("expr_prob", "va"):
        np.testing.assert_allclose(onnx_out[key], torch_out[key], atol=1e-4)
    again = load_model(va_model, device="cpu")  # auto picks ONNX Runtime on CPU; the cached export is reused
    assert again.info.extra["backend"] == "onnx"
    assert again.frame_stage.onnx_path == onnx_bundle.frame_stage.onnx_path


def test_bad_options(va_model: Path) -> None:
    with pytest.raises(ConfigError, match="backend"):
        load_model(va_model, backend="tensorrt")
    with pytest.raises(ConfigError, match="smoothing"):
        load_model(va_model, device="cpu", smoothing_sec=-1)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="GPU"):  # the rule itself: tests/test_utils_devices.py
            load_model(va_model, device="cuda")


def test_onnx_export_leaves_the_torch_model_in_eval_mode(tmp_path: Path) -> None:
    """The exporter restores its wrapper's mode; a train-mode wrapper used to flip the shipped model
    (BatchNorm) into training mode, so any later torch use gave batch-dependent outputs."""
    pytest.importorskip("onnxruntime")
    import torch

    from affectseq.models.factory import load_frame_model
    from affectseq.predict.onnx_backend import export_onnx

    model = load_frame_model("default").eval()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (3, *_input_shape(model))).astype(np.float32))
    with torch.inference_mode():
        before = model(x)["expr"]
    export_onnx(model, tmp_path / "m.onnx")
    assert not model.training and not any(m.training for m in model.modules())
    with torch.inference_mode():
        torch.testing.assert_close(model(x[:1])["expr"], before[:1], atol=1e-5, rtol=1e-5)


def _input_shape(model) -> tuple[int, int, int]:
    return model.spec.in_chans, model.spec.input_size, model.spec.input_size
