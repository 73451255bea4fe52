"""Frame-model checkpoints: round trip through one .safetensors file; foreign files rejected clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectseq.errors import InputError
from affectseq.modelfile.frame import read_frame_model_header
from affectseq.models.factory import load_frame_model, save_frame_model
from affectseq.features.encoders import create_encoder
from affectseq.features.frame_model import FrameModel
from affectseq.labels import EXPR_CLASSES_8


def _model(tasks=("expr", "va", "au")) -> FrameModel:
    torch.manual_seed(0)
    encoder = create_encoder("torchvision/mobilenet_v3_small", input_size=48, grayscale=True, framing="fer2013")
    return FrameModel(encoder, tasks, expr_classes=EXPR_CLASSES_8).eval()


def test_frame_model_outputs_per_task() -> None:
    model = _model()
    x = torch.randn(4, 3, 48, 48)
    with torch.no_grad():
        out = model(x)
    assert set(out) == {"expr", "va", "au"}
    assert out["expr"].shape == (4, 8) and out["au"].shape == (4, 13)
    assert out["va"].shape == (4, 2) and out["va"].abs().max() <= 1.0  # tanh
    only_va = FrameModel(create_encoder("paper_cnn"), ["va"])
    assert only_va.tasks == ("va",) and only_va.expr_classes == ()
    with pytest.raises(ValueError):
        FrameModel(create_encoder("paper_cnn"), ["emotion"])


def test_round_trip_keeps_weights_spec_and_meta(tmp_path) -> None:
    model = _model()
    path = save_frame_model(tmp_path / "m.safetensors", model, {"dataset": "x", "val_metrics": {"acc": np.float32(0.5)}})
    loaded = load_frame_model(path)
    assert loaded.spec == model.spec and loaded.tasks == model.tasks and loaded.expr_classes == EXPR_CLASSES_8
    assert loaded.meta["dataset"] == "x" and loaded.meta["val_metrics"]["acc"] == 0.5
    assert not loaded.training
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    for task in a:
        assert torch.allclose(a[task], b[task], atol=1e-6)
    header = read_frame_model_header(path)
    assert header["format"] == "affectseq.frame_model" and header["encoder"]["framing"] == "fer2013"
    assert header["face"] == {"framing": "fer2013", "crop_size": 48} and header["version"] == 2
    # A training run directory resolves to its best checkpoint.
    (tmp_path / "run").mkdir()
    save_frame_model(tmp_path / "run" / "checkpoint_best.safetensors", model)
    assert load_frame_model(tmp_path / "run").spec == model.spec


def test_foreign_files_are_rejected_with_one_clear_line(tmp_path) -> None:
    from safetensors.torch import save_file

    foreign = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    with pytest.raises(InputError, match="other.safetensors: not an affectseq model"):
        load_frame_model(foreign)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="junk.safetensors: not an affectseq model"):
        load_frame_model(junk)
    with pytest.raises(InputError, match="not found"):
        load_frame_model(tmp_path / "missing.safetensors")
    with pytest.raises(InputError, match="shipped models"):
        load_frame_model("no-such-model-name")
