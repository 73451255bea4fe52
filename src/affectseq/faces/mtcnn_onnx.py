"""MTCNN's P-, R- and O-Net as ONNX files shipped in ``affectseq/weights``, run with ONNX Runtime.

The files are exported from the PyTorch networks of :mod:`affectseq.faces.mtcnn_nets`
(the ``mtcnn`` package's weights) by ``python scripts/export_shipped_onnx.py``
(:func:`export_mtcnn_onnx`); each records the sha256 of the ``.lz4`` weight file it came
from (:mod:`affectseq.utils.onnx_files`). Running them needs neither torch nor the
``mtcnn`` package, which is what makes ``predict``'s default path torch-free.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np

from affectseq.errors import InputError

NETS: tuple[str, ...] = ("pnet", "rnet", "onet")
OPSET = 17
# Input side and output names of each network (P-Net takes any image size).
_INPUTS: dict[str, int | None] = {"pnet": None, "rnet": 24, "onet": 48}
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {
    "pnet": ("box_reg", "face_prob"),
    "rnet": ("box_reg", "face_prob"),
    "onet": ("box_reg", "landmarks", "face_prob"),
}


def shipped_onnx_path(net: str) -> Path:
    """Where the shipped ONNX file of ``net`` (pnet/rnet/onet) lies in the installed package."""
    return Path(str(resources.files("affectseq") / "weights" / f"mtcnn_{net}.onnx"))


class OnnxMTCNNNets:
    """The shipped ONNX networks behind the NumPy interface of :func:`affectseq.faces.mtcnn.load_nets`."""

    def __init__(self, threads: int = 1) -> None:
        from affectseq.utils.onnx_files import cpu_session

        self.sessions = {}
        for net in NETS:
            path = shipped_onnx_path(net)
            if not path.is_file():
                raise InputError(path, "shipped MTCNN ONNX file missing (reinstall affectseq, or --backend torch)")
            self.sessions[net] = cpu_session(path, threads)

    def _run(self, net: str, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.sessions[net].run(None, {"input": np.ascontiguousarray(x, dtype=np.float32)}))

    def pnet(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """(1, 3, H, W) -> box regression (1, 4, h, w), face probability (1, h, w)."""
        return self._run("pnet", x)

    def rnet(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """(N, 3, 24, 24) -> box regression (N, 4), face probability (N,)."""
        return self._run("rnet", x)

    def onet(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """(N, 3, 48, 48) -> box regression (N, 4), landmarks (N, 10), face probability (N,)."""
        return self._run("onet", x)


def export_mtcnn_onnx(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Export P-, R- and O-Net to ``out_dir/mtcnn_<net>.onnx`` from the installed ``mtcnn`` package's weights.

    Each file records the sha256 and name of the ``.lz4`` file its weights came from.
    Needs torch and the ``mtcnn`` package (export time only).
    """
    import warnings

    import torch

    from affectseq.faces.mtcnn_nets import load_mtcnn_nets, mtcnn_weights_dir
    from affectseq.utils.atomic import atomic_path
    from affectseq.utils.hashing import sha256_file
    from affectseq.utils.onnx_files import SOURCE, SOURCE_SHA256, stamp_metadata

    written = []
    for net, module in zip(NETS, load_mtcnn_nets()):
        side = _INPUTS[net]
        dummy = torch.zeros(2, 3, side or 37, side or 53)
        axes = {0: "batch"} if side else {0: "batch", 2: "height", 3: "width"}
        names = OUTPUT_NAMES[net]
        dynamic = {"input": axes, **{name: {0: "batch"} for name in names}}
        if not side:
            dynamic = {"input": axes, "box_reg": {0: "batch", 2: "map_h", 3: "map_w"},
                       "face_prob": {0: "batch", 1: "map_h", 2: "map_w"}}
        path = Path(out_dir) / f"mtcnn_{net}.onnx"
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(module, (dummy,), str(tmp), input_names=["input"], output_names=list(names),
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
        source = mtcnn_weights_dir() / f"{net}.lz4"
        stamp_metadata(path, {SOURCE_SHA256: sha256_file(source), SOURCE: f"mtcnn==1.0.0 mtcnn/assets/weights/{net}.lz4"})
        written.append(path)
    return written
