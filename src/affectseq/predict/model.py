"""Load any affectseq model for ``predict``: the shipped default, a frame model, or a sequence bundle.

* a **frame model** (``.safetensors`` from ``affectseq train``, or ``"default"``):
  the CNN's class probabilities (and VA if it has that head) per frame, then the
  documented moving-average smoothing over each face track;
* a **sequence bundle** (from ``affectseq train-sequence``): the frame encoder's
  features per frame, then the trained GRU/LSTM over each face track
  (:mod:`affectseq.predict.sequence`).

The kind is read from the file's own metadata, so users' models plug in
unchanged. A file that is not ours raises :class:`~affectseq.errors.InputError`.
Backends (of the frame stage; a sequence bundle's temporal model always runs on torch):
``torch`` (CPU or GPU, batched), ``onnx`` (ONNX Runtime on CPU,
:mod:`affectseq.predict.onnx_backend`) and ``auto`` (the default): ONNX Runtime on CPU
when ONNX Runtime is importable (a base dependency) -- 2-2.5x faster per face than torch
there, same outputs to 1e-4 -- else torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from affectseq.errors import ConfigError, InputError
from affectseq.predict.onnx_backend import build_frame_stage, onnx_available
from affectseq.predict.smoothing import DEFAULT_SMOOTHING_SEC
from affectseq.predict.stages import ModelBundle, ModelInfo, SmoothingTemporal
from affectseq.utils.devices import resolve_device_name
from affectseq.utils.hashing import sha256_file
from affectseq.utils.numbers import check_number, nonfinite_weights

BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx")


def sniff_model_format(path: Path) -> str:
    """The ``format`` an affectseq model file declares; InputError for a file that is not ours."""
    from affectseq.modelfile.container import model_format

    return model_format(path)


def load_model(
    name_or_path: str | os.PathLike[str] = "default",
    *,
    backend: str = "auto",
    device: str | None = "auto",
    smoothing_sec: float | None = None,
    tta_flip: bool = False,
) -> ModelBundle:
    """Build the :class:`ModelBundle` ``predict`` runs, from a shipped name or a checkpoint path.

    ``smoothing_sec`` overrides the default model's smoothing window (frame models
    only; a sequence model's temporal stage is the trained RNN). ``tta_flip`` averages each
    face's outputs with its mirror image's (frame models only; :mod:`affectseq.predict.tta`).
    """
    from affectseq.features.shipped import SHIPPED_MODELS, resolve_model_path

    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if smoothing_sec is not None:  # NaN passed a plain "< 0" check and became a silent "no face"
        smoothing_sec = check_number("--smoothing-sec", smoothing_sec, lo=0.0)
    path = resolve_model_path(name_or_path)
    fmt = sniff_model_format(path)
    bad = nonfinite_weights(path)  # NaN weights gave NaN outputs that passed for "no face"
    if bad:
        raise InputError(path, f"the model's weights are not finite ({bad}); refusing to predict with them")
    model_id = os.fspath(name_or_path) if os.fspath(name_or_path) in SHIPPED_MODELS else path.name
    device = resolve_device_name(device)  # a name: recorded in the model info, compared below
    if backend == "auto":
        backend = "onnx" if device == "cpu" and onnx_available() else "torch"
    if "sequence" in fmt:
        from affectseq.predict.sequence import load_sequence_model

        if tta_flip:
            raise ConfigError("--tta-flip applies to frame models only, not to sequence bundles")
        return load_sequence_model(path, model_id=model_id, backend=backend, device=device)
    return _load_frame_bundle(path, model_id, backend, device, smoothing_sec, tta_flip)


def _torch_frame_model(path: Path, device: str) -> Any:
    """The frame model's torch network (imports torch: only when the torch backend runs)."""
    from affectseq.models.factory import load_frame_model

    return load_frame_model(path, device=device)


def _load_frame_bundle(
    path: Path, model_id: str, backend: str, device: str, smoothing_sec: float | None, tta_flip: bool = False
) -> ModelBundle:
    from affectseq.modelfile.frame import read_frame_model_header
    from affectseq.features.spec import EncoderSpec

    # The header says everything but the weights; the torch network is built only when needed.
    header = read_frame_model_header(path)
    spec, tasks = EncoderSpec.from_dict(header["encoder"]), tuple(header["tasks"])
    classes = tuple(header["expr_classes"])
    meta = dict(header["meta"])
    if smoothing_sec is None:
        # A model may document its own window (the default model's card does); else the package default.
        try:
            smoothing_sec = check_number("meta.smoothing_sec", meta.get("smoothing_sec", DEFAULT_SMOOTHING_SEC),
                                         lo=0.0)
        except ConfigError as err:
            raise InputError(path, f"invalid frame model header: {err}") from None
    sha256 = sha256_file(path)
    stage, backend = build_frame_stage(backend, spec, tasks, path, lambda on: _torch_frame_model(path, on),
                                       device, checkpoint_sha256=sha256)
    if tta_flip:
        from affectseq.predict.tta import FlipAveragedStage

        stage = FlipAveragedStage(stage)
    info = ModelInfo(
        model_id=model_id,
        kind="frame",
        classes=classes,
        has_va="va" in tasks,
        source=str(path),
        sha256=sha256,
        temporal=f"moving average of per-frame outputs over {smoothing_sec:g} s per face track"
        if smoothing_sec > 0 else "none (per-frame outputs)",
        extra={"encoder": spec.name, "smoothing_sec": smoothing_sec, "backend": backend, "device": device,
               **({"tta_flip": True} if tta_flip else {})},
    )
    return ModelBundle(frame_stage=stage, temporal_stage=SmoothingTemporal(smoothing_sec), info=info)
