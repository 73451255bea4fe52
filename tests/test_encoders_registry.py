"""Frame encoder registry: shapes, data contracts, the paper CNN's exact layers, init weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from affectseq.errors import ConfigError, InputError
from affectseq.features.encoders import EncoderSpec, create_encoder, encoder_from_spec, list_encoders

# A small timm model stands for "any timm backbone" (built offline, pretrained=False).
TIMM_NAME = "mobilenetv3_small_050"


@pytest.mark.parametrize("name", list_encoders() + [TIMM_NAME])
def test_every_encoder_forward_features_matches_its_spec(name: str) -> None:
    torch.manual_seed(0)
    size = None if name == "paper_cnn" else 64
    encoder = create_encoder(name, input_size=size).eval()
    spec = encoder.spec
    assert isinstance(spec, EncoderSpec)
    assert len(spec.mean) == len(spec.std) == spec.in_chans
    x = torch.randn(2, spec.in_chans, spec.input_size, spec.input_size)
    with torch.no_grad():
        features = encoder.forward_features(x)
    assert features.shape == (2, spec.feature_dim)
    assert torch.isfinite(features).all()
    # The spec alone rebuilds the same architecture (what checkpoints rely on).
    rebuilt = encoder_from_spec(EncoderSpec.from_dict(spec.to_dict()))
    assert rebuilt.spec == spec
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in encoder.parameters()]


def test_paper_cnn_is_the_papers_network() -> None:
    cnn = create_encoder("paper_cnn").eval()
    spec = cnn.spec
    assert (spec.input_size, spec.in_chans, spec.grayscale, spec.feature_dim) == (96, 1, True, 300)
    assert spec.mean == (0.0,) and spec.std == (1.0,)  # pixels / 255 only
    convs = [m for m in cnn.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(64, (5, 5)), (128, (5, 5)), (256, (5, 5))]
    assert all(c.bias is None for c in convs)
    assert isinstance(cnn.input_norm, nn.BatchNorm2d)
    x = torch.rand(3, 1, 96, 96)
    with torch.no_grad():
        flat = cnn.conv_features(x)
        assert flat.shape == (3, 1024)  # 2 x 2 x 256 after the 9x9/9 average pool
        assert cnn.fc.in_features == 1024 and cnn.fc.out_features == 300
        features = cnn.forward_features(x)
    assert features.shape == (3, 300)
    assert (features < 0).any()  # no activation on the feature layer
    assert cnn.head_dropout == 0.5


def test_unknown_encoder_error_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="paper_cnn") as err:
        create_encoder("not_a_network")
    assert "torchvision/mobilenet_v2" in str(err.value)
    with pytest.raises(ConfigError):
        create_encoder("paper_cnn", input_size=64)


def test_init_weights_from_local_file(tmp_path) -> None:
    torch.manual_seed(1)
    source = create_encoder("torchvision/mobilenet_v2", input_size=64)
    path = tmp_path / "weights.pth"
    torch.save(source.body.state_dict(), path)
    loaded = create_encoder("torchvision/mobilenet_v2", input_size=64, init_weights=path)
    for (name, a), b in zip(source.body.state_dict().items(), loaded.body.state_dict().values()):
        assert torch.equal(a, b), name
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pth"):
        create_encoder("torchvision/mobilenet_v2", init_weights=tmp_path / "junk.pth")
    with pytest.raises(InputError, match="match only"):
        create_encoder("torchvision/resnet18", init_weights=path)  # weights of another architecture
