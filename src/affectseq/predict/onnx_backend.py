"""ONNX Runtime backend for frame models (``--backend onnx``; the CPU default, installed with affectseq).

The exported graph takes the aligned uint8 face crops ``(N, 112, 112, 3)`` themselves and
runs :func:`affectseq.features.preprocess.preprocess_batch` (the one place inputs are
normalised, traced with its resize as matrix products), the encoder, and the heads +
softmax (or, for a sequence bundle, the encoder's ``features``). So at run time the ONNX
backend needs neither torch nor the model's torch code.

Where the graph comes from, first found wins:

1. an ``.onnx`` beside the checkpoint with the same stem (the shipped default model's, made
   by ``scripts/export_shipped_onnx.py``) that records the checkpoint's sha256;
2. the export cache ``$XDG_CACHE_HOME/affectseq/onnx`` (or ``~/.cache``), keyed by that sha256;
3. an export made now (needs torch), then cached.

:func:`build_frame_stage` is the one place a backend becomes a frame stage, with the
fallback to torch (one warning) when the export or ONNX Runtime fails.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from affectseq.errors import ConfigError, first_line
from affectseq.faces.stream import ALIGNED_SIZE
from affectseq.predict.frame_stage import VIDEO_FACE_FRAMING, TorchFrameStage
from affectseq.utils.atomic import atomic_path
from affectseq.utils.hashing import sha256_file
from affectseq.utils.onnx_files import SOURCE, SOURCE_SHA256, cpu_session, session_metadata, stamp_metadata

log = logging.getLogger(__name__)
OPSET = 17
OUTPUTS = ("heads", "features")  # what a frame stage gives: head outputs, or the encoder's features
# Recorded in every export: what the graph's input is (a changed preprocessing contract means a new export).
GRAPH_INPUT_KEY = "affectseq.graph_input"
GRAPH_INPUT = f"crops uint8 (N, {ALIGNED_SIZE}, {ALIGNED_SIZE}, 3) RGB, framing {VIDEO_FACE_FRAMING}"
GRAPH_OUTPUT_KEY = "affectseq.graph_output"


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


def export_onnx(model: Any, path: Path, output: str = "heads", crop_size: int | None = ALIGNED_SIZE,
                source: str | os.PathLike[str] | None = None) -> None:
    """Export a frame model to ONNX at ``path``, atomically.

    Input ``crops``: uint8 (N, ``crop_size``, ``crop_size``, 3) aligned RGB crops, preprocessed
    inside the graph as :func:`~affectseq.features.preprocess.preprocess_faces` does for
    video faces; ``crop_size=None``: input ``input``, the model's own (N, C, S, S) float32
    (for benchmarks of the network alone). Outputs, with a dynamic batch axis:
    ``output="heads"``: ``expr_prob`` (softmax) and/or ``va``; ``"features"``: ``features``
    (N, D), the encoder's output a sequence bundle's temporal model reads. ``source``: the
    checkpoint file, whose sha256 the export records. The model's train/eval mode is left as it was.
    """
    import torch

    spec = model.spec
    if crop_size:
        dummy, input_name = torch.zeros(2, crop_size, crop_size, 3, dtype=torch.uint8), "crops"
    else:
        dummy, input_name = torch.zeros(2, spec.in_chans, spec.input_size, spec.input_size), "input"
    names = ["features"] if output == "features" else output_names(model.tasks)
    # The wrapper must be in eval mode too: the exporter restores the *wrapper's* mode afterwards,
    # recursively, which would otherwise leave the caller's model in training mode (BatchNorm on
    # batch statistics, dropout on) for any later torch use.
    was_training = model.training
    wrapped = _export_module(model.cpu().eval(), output, crop_size).eval()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
        torch.onnx.export(
            wrapped, (dummy,), str(tmp), input_names=[input_name], output_names=names,
            dynamic_axes={input_name: {0: "batch"}, **{n: {0: "batch"} for n in names}},
            opset_version=OPSET, dynamo=False,
        )
        if crop_size:
            meta = {GRAPH_INPUT_KEY: GRAPH_INPUT, GRAPH_OUTPUT_KEY: output}
            if source is not None:
                meta.update({SOURCE_SHA256: sha256_file(source), SOURCE: Path(source).name})
            stamp_metadata(tmp, meta)
    model.train(was_training)


def _export_module(model: Any, output: str, crop_size: int | None) -> Any:
    """``model`` wrapped for export: crops -> preprocessing -> encoder -> heads (or features)."""
    import torch

    from affectseq.features.heads import head_outputs
    from affectseq.features.preprocess import preprocess_batch, resize_matrices

    spec = model.spec
    mats = resize_matrices(spec, (crop_size, crop_size), VIDEO_FACE_FRAMING) if crop_size else None

    class _Wrapped(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner
            if mats is not None:
                self.register_buffer("rows", mats[0])
                self.register_buffer("cols_t", mats[1].T.contiguous())

        def _resize(self, x: torch.Tensor, out_hw: tuple[int, int], antialias: bool) -> torch.Tensor:
            return torch.matmul(torch.matmul(self.rows, x), self.cols_t)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            if crop_size:
                x = preprocess_batch(spec, x, VIDEO_FACE_FRAMING, self._resize)
            if output == "features":
                return (self.inner.forward_features(x),)
            out = head_outputs(self.inner(x))
            return tuple(out[name] for name in output_names(self.inner.tasks))

    return _Wrapped(model)


def graph_fits(session: Any, checkpoint_sha256: str, output: str) -> bool:
    """Whether an ONNX session's graph was exported from the checkpoint with ``checkpoint_sha256``
    for this crop contract and ``output``."""
    meta = session_metadata(session)
    return (meta.get(SOURCE_SHA256) == checkpoint_sha256 and meta.get(GRAPH_INPUT_KEY) == GRAPH_INPUT
            and meta.get(GRAPH_OUTPUT_KEY) == output)


class OnnxFrameStage:
    """Aligned crops -> ``expr_prob``/``va`` (``output="heads"``) or ``features`` with ONNX Runtime on CPU.

    ``spec``/``tasks`` come from the checkpoint's header; ``load_model`` builds the torch
    model and is called only when neither a shipped graph nor a cached export fits the
    checkpoint, so the default model never imports torch (seconds of ``predict``'s start-up).
    """

    def __init__(self, spec: Any, tasks: Sequence[str], checkpoint: str | os.PathLike[str],
                 load_model: Callable[[], Any], threads: int = 1, output: str = "heads",
                 checkpoint_sha256: str | None = None):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ConfigError("--backend onnx needs onnxruntime: pip install onnxruntime") from None
        self.spec = spec
        sha = checkpoint_sha256 or sha256_file(checkpoint)
        shipped = Path(checkpoint).with_suffix(".onnx")
        self.session = None
        if output == "heads" and shipped.is_file():
            session = cpu_session(shipped, threads)
            if graph_fits(session, sha, output):
                self.session, self.onnx_path = session, shipped
        if self.session is None:
            suffix = "-features" if output == "features" else ""  # a bundle's graph stops at the encoder
            path = onnx_cache_dir() / f"{sha[:20]}-opset{OPSET}-crops{ALIGNED_SIZE}{suffix}.onnx"
            if not path.is_file():
                log.info("exporting %s to ONNX (%s), once per checkpoint", checkpoint, path)
                export_onnx(load_model(), path, output, source=checkpoint)
            self.session, self.onnx_path = cpu_session(path, threads), path
        # The graph's own output names (expr_prob/va, or features): no torch-side lookup needed.
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        crops = np.ascontiguousarray(crops, dtype=np.uint8)
        if crops.ndim == 3:
            crops = crops[None]
        values = self.session.run(self.output_names, {"crops": crops})
        return {name: np.asarray(v, np.float32) for name, v in zip(self.output_names, values)}


def onnx_available() -> bool:
    """Whether ONNX Runtime is installed (a base dependency, unless removed), without importing it."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def build_frame_stage(backend: str, spec: Any, tasks: Sequence[str], checkpoint: str | os.PathLike[str],
                      load_model: Callable[[str], Any], device: str, output: str = "heads",
                      checkpoint_sha256: str | None = None) -> tuple[Any, str]:
    """(frame stage, backend it runs on) for a resolved ``backend`` (``"onnx"`` or ``"torch"``).

    ``load_model(device)`` builds the torch frame model; ONNX asks for it on ``"cpu"`` and only
    to export a checkpoint that has no cached export yet. An export or ONNX Runtime failure must
    not stop predict: it warns once and runs torch, which gives the same outputs (to 1e-4).
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if backend == "onnx":
        try:
            return OnnxFrameStage(spec, tasks, checkpoint, load_model=lambda: load_model("cpu"), output=output,
                                  checkpoint_sha256=checkpoint_sha256), "onnx"
        except ConfigError:
            raise
        except Exception as err:  # noqa: BLE001 -- any exporter/runtime error; torch is the fallback
            log.warning("%s: ONNX Runtime backend unavailable (%s); using torch", checkpoint,
                        first_line(err) or type(err).__name__)
    return TorchFrameStage(load_model(device), device, output=output), "torch"
