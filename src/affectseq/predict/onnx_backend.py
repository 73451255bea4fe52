"""ONNX Runtime backend for frame models (``--backend onnx``; the CPU default, installed with affectseq).

The frame model (encoder + heads + softmax; or, for a sequence bundle, the encoder's
``features``) is exported once per checkpoint to an ``.onnx`` file cached under
``$XDG_CACHE_HOME/affectseq/onnx`` (or ``~/.cache``), keyed by the checkpoint's sha256;
later runs load it directly. Preprocessing stays in
:func:`affectseq.features.preprocess.preprocess_faces`, the one place inputs are
normalised, so both backends see identical tensors. :func:`build_frame_stage` is the one
place a backend becomes a frame stage, with the fallback to torch (one warning) when the
export or ONNX Runtime fails.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from affectseq.errors import ConfigError
from affectseq.predict.frame_stage import VIDEO_FACE_FRAMING, TorchFrameStage
from affectseq.utils.atomic import atomic_path
from affectseq.utils.hashing import sha256_file

log = logging.getLogger(__name__)
OPSET = 17
OUTPUTS = ("heads", "features")  # what a frame stage gives: head outputs, or the encoder's features


def onnx_cache_dir() -> Path:
    """Where exported models are kept (created on demand; a temp dir if the home cache is read-only)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "affectseq" / "onnx"
    try:
        base.mkdir(parents=True, exist_ok=True)
        return base
    except OSError:
        return Path(tempfile.gettempdir()) / "affectseq-onnx"


def output_names(tasks: Sequence[str]) -> list[str]:
    """The exported graph's outputs for a model with ``tasks``: the :func:`~affectseq.features.heads.head_outputs`
    keys of its expression and VA heads (predict reports no AUs), in that order."""
    from affectseq.features.heads import OUTPUT_KEYS

    return [OUTPUT_KEYS[task] for task in ("expr", "va") if task in tasks]


def export_onnx(model: Any, path: Path, output: str = "heads") -> None:
    """Export a frame model to ONNX at ``path``, atomically.

    Input ``input`` (N, C, S, S) float32 of the model's contract; outputs, with a dynamic
    batch axis: ``output="heads"``: ``expr_prob`` (softmax) and/or ``va``; ``"features"``:
    ``features`` (N, D), the encoder's output a sequence bundle's temporal model reads.
    The model's train/eval mode is left as it was.
    """
    import torch

    from affectseq.features.heads import head_outputs

    class _Wrapped(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            if output == "features":
                return (self.inner.forward_features(x),)
            out = head_outputs(self.inner(x))
            return tuple(out[name] for name in output_names(self.inner.tasks))

    spec = model.spec
    dummy = torch.zeros(2, spec.in_chans, spec.input_size, spec.input_size)
    names = ["features"] if output == "features" else output_names(model.tasks)
    # The wrapper must be in eval mode too: the exporter restores the *wrapper's* mode afterwards,
    # recursively, which would otherwise leave the caller's model in training mode (BatchNorm on
    # batch statistics, dropout on) for any later torch use.
    was_training = model.training
    wrapped = _Wrapped(model.cpu().eval()).eval()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            wrapped, (dummy,), str(tmp), input_names=["input"], output_names=names,
            dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in names}},
            opset_version=OPSET, dynamo=False,
        )
    model.train(was_training)


class OnnxFrameStage:
    """Aligned crops -> ``expr_prob``/``va`` (``output="heads"``) or ``features`` with ONNX Runtime on CPU.

    ``spec``/``tasks`` come from the checkpoint's header; ``load_model`` builds the torch
    model and is called only when the checkpoint has no cached export yet, so a warm
    start never imports torchvision or builds the network (seconds of ``predict``'s start-up).
    """

    def __init__(self, spec: Any, tasks: Sequence[str], checkpoint: str | os.PathLike[str],
                 load_model: Callable[[], Any], threads: int = 1, output: str = "heads"):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("--backend onnx needs onnxruntime: pip install onnxruntime") from None
        self.spec = spec
        self.output_names = ["features"] if output == "features" else output_names(tasks)
        suffix = "-features" if output == "features" else ""  # a bundle's graph stops at the encoder
        path = onnx_cache_dir() / f"{sha256_file(checkpoint)[:20]}-opset{OPSET}{suffix}.onnx"
        if not path.is_file():
            log.info("exporting %s to ONNX (%s), once per checkpoint", checkpoint, path)
            export_onnx(load_model(), path, output)
        options = ort.SessionOptions()
        # One thread by default, like the torch stages: the model already runs in parallel with
        # decoding and face tracking; no spinning, which wastes shared cores while idle.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.onnx_path = path

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        from affectseq.features.preprocess import preprocess_faces

        x = preprocess_faces(self.spec, crops, framing=VIDEO_FACE_FRAMING).numpy()
        values = self.session.run(self.output_names, {"input": x})
        return {name: np.asarray(v, np.float32) for name, v in zip(self.output_names, values)}


def onnx_available() -> bool:
    """Whether ONNX Runtime is installed (the ``onnx`` extra), without importing it."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def build_frame_stage(backend: str, spec: Any, tasks: Sequence[str], checkpoint: str | os.PathLike[str],
                      load_model: Callable[[str], Any], device: str, output: str = "heads") -> tuple[Any, str]:
    """(frame stage, backend it runs on) for a resolved ``backend`` (``"onnx"`` or ``"torch"``).

    ``load_model(device)`` builds the torch frame model; ONNX asks for it on ``"cpu"`` and only
    to export a checkpoint that has no cached export yet. An export or ONNX Runtime failure must
    not stop predict: it warns once and runs torch, which gives the same outputs (to 1e-4).
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if backend == "onnx":
        try:
            return OnnxFrameStage(spec, tasks, checkpoint, load_model=lambda: load_model("cpu"), output=output), "onnx"
        except ConfigError:
            raise
        except Exception as err:  # noqa: BLE001 -- any exporter/runtime error; torch is the fallback
            log.warning("%s: ONNX Runtime backend unavailable (%s); using torch", checkpoint,
                        str(err).splitlines()[0] if str(err) else type(err).__name__)
    return TorchFrameStage(load_model(device), device, output=output), "torch"
