"""MTCNN's three networks (P-Net, R-Net, O-Net) in PyTorch, loading the ``mtcnn`` package's weights.

The ``mtcnn`` PyPI package (1.0.0, MIT) ships its trained weights as
``mtcnn/assets/weights/{pnet,rnet,onet}.lz4``; each ``joblib.load``s to a list of
NumPy arrays in TensorFlow/Keras layout, in layer order: conv kernels ``HWIO``,
biases, PReLU alphas ``(1, 1, C)`` (shared over space), dense kernels ``(in, out)``.
We locate the files through ``importlib.util.find_spec`` without importing the
package, because its ``__init__`` imports TensorFlow.

Layout differences handled here:

- conv kernels ``HWIO`` -> PyTorch ``OIHW``; dense kernels ``(in, out)`` -> ``(out, in)``;
- Keras ``MaxPooling2D(padding="same")`` pads at the bottom/right only, which is what
  PyTorch's ``ceil_mode=True`` does for these sizes;
- R-Net/O-Net apply ``Permute((2, 1, 3))`` before ``Flatten`` on a channels-last
  tensor, so the dense layer expects features in ``(W, H, C)`` order: we permute the
  ``(N, C, H, W)`` tensor to ``(N, W, H, C)`` before flattening.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from affectseq.errors import InputError
from affectseq.utils.atomic import atomic_path


def mtcnn_weights_dir() -> Path:
    """Folder holding ``pnet.lz4``, ``rnet.lz4`` and ``onet.lz4`` of the installed ``mtcnn`` package."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("mtcnn", "the 'mtcnn' package (mtcnn==1.0.0) is not installed; pip install mtcnn==1.0.0")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"


def _weights_cache(path: Path) -> Path:
    """Where the arrays of weight file ``path`` are kept as ``.npz``, keyed by its size and mtime."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "affectseq" / "mtcnn"
    stat = path.stat()
    return base / f"{path.stem}-{stat.st_size}-{stat.st_mtime_ns}.npz"


@lru_cache(maxsize=None)
def load_tf_weights(net: str) -> tuple[np.ndarray, ...]:
    """The arrays of ``<net>.lz4`` (``net`` in pnet/rnet/onet), in the package's Keras order.

    The first load in a user account reads the file with joblib and keeps a plain
    ``.npz`` copy (same arrays) in ``~/.cache/affectseq/mtcnn``; later processes read
    that instead, skipping joblib's ~0.2 s import on every ``predict`` start.
    """
    path = mtcnn_weights_dir() / f"{net}.lz4"
    if not path.is_file():
        raise InputError(path, "MTCNN weight file not found (reinstall mtcnn==1.0.0)")
    cache = _weights_cache(path)
    try:
        with np.load(cache) as stored:
            return tuple(np.asarray(stored[f"arr_{i}"], dtype=np.float32) for i in range(len(stored.files)))
    except Exception:  # not cached yet, or a partial/foreign file (zip, pickle or key errors): the original
        pass
    import joblib

    arrays = joblib.load(path)
    if not isinstance(arrays, (list, tuple)) or not all(isinstance(a, np.ndarray) for a in arrays):
        raise InputError(path, "not a list of NumPy arrays (unexpected mtcnn weight format)")
    result = tuple(np.asarray(a, dtype=np.float32) for a in arrays)
    try:
        with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, *result)
    except OSError:
        pass  # a read-only home: joblib each time, as before
    return result


def _conv_prelu(in_ch: int, out_ch: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, kernel), nn.PReLU(out_ch)]


def _assign(modules: list[nn.Module], arrays: tuple[np.ndarray, ...], net: str) -> None:
    """Copy Keras arrays into the parameters of ``modules`` (convs, PReLUs, linears) in order."""
    it = iter(arrays)
    try:
        for m in modules:
            if isinstance(m, nn.Conv2d):
                kernel = next(it)  # (kh, kw, in, out) -> (out, in, kh, kw)
                m.weight.data.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
                m.bias.data.copy_(torch.from_numpy(next(it)))
            elif isinstance(m, nn.Linear):
                m.weight.data.copy_(torch.from_numpy(next(it).T.copy()))
                m.bias.data.copy_(torch.from_numpy(next(it)))
            elif isinstance(m, nn.PReLU):
                m.weight.data.copy_(torch.from_numpy(next(it).reshape(-1)))
    except (StopIteration, RuntimeError) as err:
        raise InputError(f"{net}.lz4", f"weights do not fit the {net} architecture ({err})") from err
    if next(it, None) is not None:
        raise InputError(f"{net}.lz4", f"more arrays than the {net} architecture has parameters")


def _flatten_keras_order(x: torch.Tensor) -> torch.Tensor:
    # Keras: (N, H, W, C) -> Permute((2, 1, 3)) -> (N, W, H, C) -> Flatten.
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """Proposal network: fully convolutional, 12x12 receptive window with stride 2.

    ``forward`` returns ``(box_reg (N, 4, h, w), face_prob (N, h, w))``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv_prelu(3, 10, 3)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _conv_prelu(10, 16, 3)
        self.conv3, self.prelu3 = _conv_prelu(16, 32, 3)
        self.box_reg = nn.Conv2d(32, 4, 1)
        self.cls = nn.Conv2d(32, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.box_reg(x), torch.softmax(self.cls(x), dim=1)[:, 1]

    def load_tf(self, arrays: tuple[np.ndarray, ...]) -> "PNet":
        _assign([self.conv1, self.prelu1, self.conv2, self.prelu2, self.conv3, self.prelu3,
                 self.box_reg, self.cls], arrays, "pnet")
        return self


class RNet(nn.Module):
    """Refinement network on 24x24 crops: ``(box_reg (N, 4), face_prob (N,))``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv_prelu(3, 28, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _conv_prelu(28, 48, 3)
        self.pool2 = nn.MaxPool2d(3, 2)
        self.conv3, self.prelu3 = _conv_prelu(48, 64, 2)
        self.fc4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.box_reg = nn.Linear(128, 4)
        self.cls = nn.Linear(128, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.fc4(_flatten_keras_order(x)))
        return self.box_reg(x), torch.softmax(self.cls(x), dim=1)[:, 1]

    def load_tf(self, arrays: tuple[np.ndarray, ...]) -> "RNet":
        _assign([self.conv1, self.prelu1, self.conv2, self.prelu2, self.conv3, self.prelu3,
                 self.fc4, self.prelu4, self.box_reg, self.cls], arrays, "rnet")
        return self


class ONet(nn.Module):
    """Output network on 48x48 crops: ``(box_reg (N, 4), landmarks (N, 10), face_prob (N,))``.

    Landmarks are relative to the crop: ``x1..x5`` then ``y1..y5``, in [0, 1].
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv_prelu(3, 32, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _conv_prelu(32, 64, 3)
        self.pool2 = nn.MaxPool2d(3, 2)
        self.conv3, self.prelu3 = _conv_prelu(64, 64, 3)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = _conv_prelu(64, 128, 2)
        self.fc5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.box_reg = nn.Linear(256, 4)
        self.landmarks = nn.Linear(256, 10)
        self.cls = nn.Linear(256, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.fc5(_flatten_keras_order(x)))
        return self.box_reg(x), self.landmarks(x), torch.softmax(self.cls(x), dim=1)[:, 1]

    def load_tf(self, arrays: tuple[np.ndarray, ...]) -> "ONet":
        _assign([self.conv1, self.prelu1, self.conv2, self.prelu2, self.conv3, self.prelu3,
                 self.conv4, self.prelu4, self.fc5, self.prelu5, self.box_reg, self.landmarks,
                 self.cls], arrays, "onet")
        return self


def load_mtcnn_nets() -> tuple[PNet, RNet, ONet]:
    """The three networks with the shipped weights, in eval mode, gradients off."""
    nets = (PNet().load_tf(load_tf_weights("pnet")),
            RNet().load_tf(load_tf_weights("rnet")),
            ONet().load_tf(load_tf_weights("onet")))
    for net in nets:
        net.eval().requires_grad_(False)
    return nets


class TorchMTCNNNets:
    """The three networks on torch behind the NumPy interface of :func:`affectseq.faces.mtcnn.load_nets`.

    Inputs run channels_last: PyTorch's CPU max-pooling is ~10x faster in NHWC than NCHW
    for these small maps, and the detector's inputs are channels-last views of HWC images.
    """

    def __init__(self, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.nets = tuple(n.to(self.device, memory_format=torch.channels_last) for n in load_mtcnn_nets())

    def _run(self, net: nn.Module, x: np.ndarray) -> tuple[np.ndarray, ...]:
        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device).contiguous(memory_format=torch.channels_last)
            return tuple(out.cpu().numpy() for out in net(t))

    def pnet(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """(1, 3, H, W) -> box regression (1, 4, h, w), face probability (1, h, w)."""
        return self._run(self.nets[0], x)

    def rnet(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """(N, 3, 24, 24) -> box regression (N, 4), face probability (N,)."""
        return self._run(self.nets[1], x)

    def onet(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """(N, 3, 48, 48) -> box regression (N, 4), landmarks (N, 10), face probability (N,)."""
        return self._run(self.nets[2], x)
