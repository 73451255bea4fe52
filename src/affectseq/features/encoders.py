"""Frame encoders: a small explicit registry, each encoder declaring its data contract.

An encoder is an ``nn.Module`` with a ``spec`` (:class:`EncoderSpec`: input size,
channels, grayscale flag, mean/std, feature dimension, crop framing) and
``forward_features(x) -> (N, spec.feature_dim)``. The spec travels with every
checkpoint and feature store, so nobody guesses preprocessing from a name.

Registered names:

* ``paper_cnn`` -- the "simple CNN" of Khorrami et al. that Rangulov & Fahim used;
* ``torchvision/<arch>`` -- a few torchvision backbones (ImageNet weights only
  from a local file via ``init_weights``);
* any timm model name (``timm.list_models()``), built with ``pretrained=False``
  unless ``pretrained_online=True`` is asked for explicitly.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
from torch import nn

from affectseq.errors import ConfigError, InputError
from affectseq.modelfile.schema import FRAMINGS, SPEC_OPTIONS  # noqa: F401 (re-exported)

# The data contract lives in affectseq.features.spec (no torch: predict's ONNX path reads it); re-exported here.
from affectseq.features.spec import (  # noqa: E402,F401
    FRAMINGS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SPEC_OPTIONS,
    EncoderSpec,
)


class PaperCNN(nn.Module):
    """The paper's frame CNN (Khorrami et al.'s simple CNN), exactly as its code built it.

    96x96 gray (pixels/255) -> BatchNorm -> conv5x5x64 'same' -> maxpool 2 -> conv5x5x128 'valid'
    -> maxpool 2 -> conv5x5x256 'valid' -> avgpool 9x9 stride 9 (2x2x256 = 1024) -> dense 300
    (no activation: the feature). Convs use ReLU and no bias. The 0.5 dropout before the task
    head is :attr:`head_dropout` (applied by :class:`affectseq.features.frame_model.FrameModel`).
    """

    head_dropout = 0.5

    def __init__(self, input_size: int = 96, framing: str = "abaw112") -> None:
        super().__init__()
        if input_size != 96:
            raise ConfigError("paper_cnn is defined for 96x96 inputs (its 9x9 pooling gives 2x2x256)")
        self.spec = EncoderSpec(
            name="paper_cnn", input_size=96, in_chans=1, grayscale=True, mean=(0.0,), std=(1.0,),
            feature_dim=300, framing=framing, options=(("framing", framing),),
        )
        self.input_norm = nn.BatchNorm2d(1)
        self.conv1 = nn.Conv2d(1, 64, 5, padding="same", bias=False)
        self.conv2 = nn.Conv2d(64, 128, 5, padding=0, bias=False)
        self.conv3 = nn.Conv2d(128, 256, 5, padding=0, bias=False)
        self.pool = nn.MaxPool2d(2, 2)
        self.avgpool = nn.AvgPool2d(9, 9)
        self.fc = nn.Linear(1024, 300)

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened 1024 values before the dense layer."""
        x = self.input_norm(x)
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = self.avgpool(torch.relu(self.conv3(x)))
        return torch.flatten(x, 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 96, 96) -> (N, 300) features."""
        return self.fc(self.conv_features(x))

    forward = forward_features


class BackboneEncoder(nn.Module):
    """A pooled-feature backbone (timm with ``num_classes=0`` or torchvision without its classifier)."""

    def __init__(self, body: nn.Module, spec: EncoderSpec, head_dropout: float) -> None:
        super().__init__()
        self.body = body
        self.spec = spec
        self.head_dropout = head_dropout

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, S, S) -> (N, feature_dim) pooled features."""
        return self.body(x)

    forward = forward_features


def _torchvision_body(arch: str) -> tuple[nn.Module, int]:
    import torchvision

    model = torchvision.models.get_model(arch, weights=None)
    if arch.startswith(("mobilenet", "efficientnet")):
        # The pooled features enter the first Linear of the classifier (v3 has Linear-Hardswish-Dropout-Linear).
        feature_dim = next(m for m in model.classifier if isinstance(m, nn.Linear)).in_features
        model.classifier = nn.Identity()
    elif arch.startswith("resnet"):
        feature_dim = model.fc.in_features
        model.fc = nn.Identity()
    else:  # pragma: no cover - guarded by TORCHVISION_ARCHS
        raise ConfigError(f"no feature head rule for torchvision/{arch}")
    return model, feature_dim


TORCHVISION_ARCHS: tuple[str, ...] = ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "resnet18",
                                      "efficientnet_b0")


def _load_init_weights(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a local state dict (e.g. torchvision ImageNet weights) leaving classifier keys out."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(path, "init weights file not found") from None
    except Exception as err:  # torch raises many types for a non-checkpoint file
        raise InputError(path, f"not a readable PyTorch state dict ({err})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = module.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if len(matched) < len(own) // 2:
        raise InputError(path, f"init weights match only {len(matched)} of {len(own)} tensors of the encoder")
    module.load_state_dict(matched, strict=False)


def _build_backbone(kind: str, arch: str, input_size: int, grayscale: bool, framing: str,
                    init_weights: str | None, pretrained_online: bool, head_dropout: float) -> BackboneEncoder:
    if kind == "torchvision":
        if pretrained_online:
            raise ConfigError("torchvision backbones take ImageNet weights only from a local file (init_weights)")
        body, feature_dim = _torchvision_body(arch)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        name = f"torchvision/{arch}"
    else:
        import timm

        body = timm.create_model(arch, pretrained=pretrained_online, num_classes=0)
        # num_features is the pre-head width for some families (MobileNetV3: 576, pooled output 1024),
        # so measure the pooled output once.
        with torch.no_grad():
            feature_dim = int(body.eval()(torch.zeros(1, 3, input_size, input_size)).shape[1])
        body.train()
        cfg = getattr(body, "pretrained_cfg", {}) or {}
        mean = tuple(cfg.get("mean", IMAGENET_MEAN))
        std = tuple(cfg.get("std", IMAGENET_STD))
        name = arch
    if init_weights:
        _load_init_weights(body, init_weights)
    spec = EncoderSpec(
        name=name, input_size=input_size, in_chans=3, grayscale=grayscale, mean=tuple(mean), std=tuple(std),
        feature_dim=feature_dim, framing=framing,
        options=tuple(sorted({"input_size": input_size, "grayscale": grayscale, "framing": framing,
                              "head_dropout": head_dropout}.items())),
    )
    return BackboneEncoder(body, spec, head_dropout)


def list_encoders() -> list[str]:
    """The explicitly registered names (any timm model name is accepted as well)."""
    return ["paper_cnn"] + [f"torchvision/{a}" for a in TORCHVISION_ARCHS]


def create_encoder(
    name: str,
    *,
    input_size: int | None = None,
    grayscale: bool = False,
    framing: str = "abaw112",
    init_weights: str | os.PathLike[str] | None = None,
    pretrained_online: bool = False,
    head_dropout: float = 0.2,
) -> nn.Module:
    """Build a frame encoder by name; the module carries ``.spec`` and ``.forward_features``.

    ``init_weights`` loads a local state dict (never downloads); ``pretrained_online``
    lets timm download its weights and is off unless asked for. ``input_size``
    defaults to 96 for ``paper_cnn`` and 112 otherwise.
    """
    if framing not in FRAMINGS:
        raise ConfigError(f"unknown framing {framing!r}; choose one of {', '.join(FRAMINGS)}")
    init = os.fspath(init_weights) if init_weights else None
    if name == "paper_cnn":
        model = PaperCNN(input_size or 96, framing=framing)
        if init:
            _load_init_weights(model, init)
        return model
    if name.startswith("torchvision/"):
        arch = name.split("/", 1)[1]
        if arch not in TORCHVISION_ARCHS:
            raise ConfigError(f"unknown encoder {name!r}; torchvision backbones: "
                              f"{', '.join('torchvision/' + a for a in TORCHVISION_ARCHS)}")
        return _build_backbone("torchvision", arch, input_size or 112, grayscale, framing, init,
                               pretrained_online, head_dropout)
    arch = name.removeprefix("timm/")
    import timm

    if arch not in timm.list_models():
        raise ConfigError(
            f"unknown encoder {name!r}; valid: {', '.join(list_encoders())}, or any timm model name "
            "(e.g. mobilenetv3_large_100, efficientnet_b0, resnet18)"
        )
    return _build_backbone("timm", arch, input_size or 112, grayscale, framing, init, pretrained_online,
                           head_dropout)


def encoder_from_spec(spec: EncoderSpec) -> nn.Module:
    """Rebuild an (untrained) encoder module from a saved spec.

    Only the options in :data:`SPEC_OPTIONS` are accepted (``ValueError`` otherwise):
    a spec read from a file must not download weights or read other files.
    """
    options: dict[str, Callable[..., Any] | Any] = dict(spec.options)
    refused = sorted(set(options) - set(SPEC_OPTIONS))
    if refused:
        raise ValueError(f"encoder option(s) {refused} cannot be rebuilt from a spec "
                         f"(allowed: {', '.join(sorted(SPEC_OPTIONS))})")
    return create_encoder(spec.name, **options)
