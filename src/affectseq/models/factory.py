"""The one factory that turns checked model-file headers into networks, and networks into model files.

:mod:`affectseq.modelfile` reads and writes tensors and checked headers and knows no model
class; this module (the stage that owns networks) builds them:

* frame models: :func:`load_frame_model` (a file, or a shipped model by name such as ``"default"``),
  :func:`save_frame_model`;
* temporal models: :func:`build_temporal_model` from a sequence header -- its architecture is looked
  up in :mod:`affectseq.models.registry` and its arguments checked there before anything is built
  (an unknown architecture is an ``InputError`` naming the registered ones) --,
  :func:`load_sequence_checkpoint`, :func:`save_sequence_checkpoint`, and the frame model a
  sequence bundle embeds (:func:`load_bundled_frame_model`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch

from affectseq.errors import ConfigError, InputError, first_line
from affectseq.features.encoders import EncoderSpec, encoder_from_spec
from affectseq.features.frame_model import FrameModel
from affectseq.modelfile.frame import frame_header, read_frame_model_header, read_frame_tensors, write_frame_file
from affectseq.modelfile.sequence import bundled_frame_file, read_sequence_header, read_temporal_state, \
    write_sequence_file
from affectseq.models.registry import get_arch
from affectseq.models.temporal import TemporalConfig, TemporalModel


def _one_line(err: BaseException) -> str:
    # One line: torch's size-mismatch messages span many lines.
    return first_line(err)[:200] or type(err).__name__


# -- frame models ------------------------------------------------------------------------------------------------
def save_frame_model(path: str | os.PathLike[str], model: FrameModel, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (weights + encoder spec/tasks/classes + ``meta``) to ``path`` atomically."""
    header = frame_header(model.spec.to_dict(), model.tasks, model.expr_classes,
                          num_aus=int(model.heads["au"].out_features) if "au" in model.heads else 0,
                          dropout=float(model.dropout.p), meta=meta,
                          expr_temperature=float(model.expr_temperature))
    return write_frame_file(path, model.state_dict(), header)


def build_frame_model(header: Mapping[str, Any]) -> FrameModel:
    """The (untrained) frame model a checked frame header describes."""
    return FrameModel(encoder_from_spec(EncoderSpec.from_dict(header["encoder"])), tasks=header["tasks"],
                      expr_classes=header["expr_classes"], num_aus=header["num_aus"] or 13,
                      dropout=header["dropout"])


def load_frame_model(path_or_name: str | os.PathLike[str], device: str | torch.device = "cpu") -> FrameModel:
    """Load a frame model from a file, or a shipped model by name (``"default"``), in eval mode.

    The returned model carries ``.meta`` (the training information saved with it)
    and ``.source_path``.
    """
    from affectseq.features.shipped import resolve_model_path

    path = resolve_model_path(path_or_name)
    header = read_frame_model_header(path)
    try:
        model = build_frame_model(header)
        model.load_state_dict(read_frame_tensors(path))
    except (KeyError, ValueError, TypeError, RuntimeError, ConfigError) as err:
        raise InputError(path, f"affectseq model file does not match its metadata ({_one_line(err)})") from None
    model.expr_temperature = header.get("expr_temperature", 1.0)  # the EXPR calibration (1.0: none)
    model.meta = header["meta"]  # type: ignore[assignment]
    model.source_path = str(path)  # type: ignore[assignment]
    return model.to(device).eval()


# -- temporal models ---------------------------------------------------------------------------------------------
def build_temporal_model(header: Mapping[str, Any], path: str | os.PathLike[str] = "<header>") -> TemporalModel:
    """The (untrained) temporal model a checked sequence header describes; InputError naming ``path`` otherwise."""
    config = header["model_config"]
    try:
        get_arch(config["arch"])
        temporal = TemporalConfig(arch=config["arch"], args=config["args"], mode=header["mode"],
                                  mask_channel=config["mask_channel"])
        return TemporalModel(header["input_dim"], header["heads"], temporal)
    except (ConfigError, ValueError, TypeError) as err:
        raise InputError(path, f"invalid sequence model header: model_config: {_one_line(err)}") from None


def network_header(model: TemporalModel) -> dict[str, Any]:
    """What a sequence header records of ``model``: ``input_dim``, ``heads``, ``model_config``."""
    return {"input_dim": model.input_dim, "heads": dict(model.head_sizes), "model_config": model.config.header()}


def save_sequence_checkpoint(path: str | os.PathLike[str], model: TemporalModel, info: Mapping[str, Any],
                             frame_checkpoint: str | os.PathLike[str] | None = None,
                             embed_frame: bool = True) -> Path:
    """Write ``model`` + ``info`` as a sequence-model file (see :func:`affectseq.modelfile.sequence.write_sequence_file`).

    ``info["mode"]`` must be the model's own mode: the header stores it once.
    """
    if str(info["mode"]) != model.config.mode:
        raise ValueError(f"info mode {info['mode']!r} differs from the model's {model.config.mode!r}")
    return write_sequence_file(path, model.state_dict(), network_header(model), info, frame_checkpoint, embed_frame)


def load_sequence_checkpoint(path: str | os.PathLike[str], device: str = "cpu") -> tuple[TemporalModel, dict]:
    """(temporal model in eval mode, checked header) from a sequence-model file."""
    header = read_sequence_header(path)
    model = build_temporal_model(header, path)
    try:
        model.load_state_dict(read_temporal_state(path))
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise InputError(path, f"sequence model does not match its header ({_one_line(err)})") from None
    return model.to(device).eval(), header


def load_bundled_frame_model(path: str | os.PathLike[str], header: Mapping[str, Any],
                             device: str | torch.device = "cpu") -> FrameModel | None:
    """The frame model of a sequence-model file: embedded (sha256-checked), else the named file beside it.

    None when the bundle was trained on external features (no frame model).
    """
    with tempfile.TemporaryDirectory(prefix="affectseq-frame-") as tmp:
        frame_file = bundled_frame_file(path, header, tmp)
        if frame_file is None:
            return None
        model = load_frame_model(frame_file, device=device)
    model.source_path = str(path)  # type: ignore[assignment]
    return model
