"""Sequence-model checkpoints, tied to the frame encoder whose features they were trained on.

``checkpoint_best.safetensors`` of a sequence run holds:

* tensors ``temporal.*``: the :class:`~affectseq.models.temporal.TemporalModel` weights;
* tensors ``frame.*`` (when embedded, the default): the frame model's weights, copied
  from the frame checkpoint named in the feature store's manifest, so one file is
  enough to run ``affectseq predict`` on a raw video;
* header key ``affectseq``: JSON with ``format``, the temporal architecture
  (``input_dim``, ``heads``, ``model_config``), the window (``mode``, ``window``),
  ``tasks``, ``expr_classes``, the store's ``encoder`` spec, and ``frame_checkpoint``
  ``{sha256, path, embedded}`` (+ the frame file's own header when embedded).

:func:`load_sequence_bundle` rebuilds both models from a run directory or file.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from affectseq.errors import InputError
from affectseq.features.model_header import (
    FRAME_TASKS,
    MAX_CLASSES,
    MAX_FEATURE_DIM,
    HeaderChecker,
    check_format,
    parse_header_json,
)
from affectseq.models.temporal import TemporalConfig, TemporalModel
from affectseq.utils.atomic import atomic_path
from affectseq.utils.hashing import sha256_file

FORMAT = "affectseq.sequence_model"
FORMAT_VERSION = 1
HEADER_KEY = "affectseq"
BEST_NAME = "checkpoint_best.safetensors"


def save_sequence_checkpoint(
    path: str | os.PathLike[str],
    model: TemporalModel,
    info: Mapping[str, Any],
    frame_checkpoint: str | os.PathLike[str] | None = None,
    embed_frame: bool = True,
) -> Path:
    """Write ``model`` + ``info`` (mode, window, tasks, expr_classes, encoder, meta) atomically.

    ``frame_checkpoint`` is the frame-model file that made the features; it is
    referenced by sha256 and path, and its weights are embedded unless ``embed_frame`` is False.
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    header: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "input_dim": model.input_dim,
        "heads": dict(model.head_sizes),
        "model_config": asdict(model.config),
        **dict(info),
        "frame_checkpoint": None,
    }
    tensors = {f"temporal.{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if frame_checkpoint is not None:
        frame_path = Path(frame_checkpoint).resolve()
        ref: dict[str, Any] = {"sha256": sha256_file(frame_path), "path": str(frame_path), "embedded": embed_frame}
        if embed_frame:
            with safe_open(str(frame_path), framework="pt") as fh:
                ref["header"] = (fh.metadata() or {}).get(HEADER_KEY)
                for key in fh.keys():
                    tensors[f"frame.{key}"] = fh.get_tensor(key)
        header["frame_checkpoint"] = ref
    target = Path(path)
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata={HEADER_KEY: json.dumps(header, default=str)})
    return target


def read_sequence_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a sequence checkpoint, checked against its schema; ``InputError`` for anything else.

    The header is untrusted input (:mod:`affectseq.features.model_header`): every field
    used to build the models is type- and range-checked here.
    """
    from affectseq.features.checkpoint import read_safetensors_metadata

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "sequence model file not found")
    raw = read_safetensors_metadata(path, "sequence model").get(HEADER_KEY)
    header = parse_header_json(path, raw, "sequence model")
    return check_sequence_header(path, header)


_TEMPORAL_KEYS = {"cell", "hidden_sizes", "bidirectional", "dropout", "mode", "mask_channel"}
MODES = ("seq2one", "seq2seq")


def check_sequence_header(path: str | os.PathLike[str], header: dict[str, Any]) -> dict[str, Any]:
    """Schema of a sequence-model header: the fields that build models, typed and bounded."""
    check = HeaderChecker(path, "sequence model")
    check_format(check, header, FORMAT, FORMAT_VERSION)
    check.integer(header, "input_dim", 1, MAX_FEATURE_DIM)
    heads = check.mapping(header, "heads")
    if not heads or not set(heads) <= set(FRAME_TASKS):
        raise check.fail("heads", f"expected tasks among {', '.join(FRAME_TASKS)}, got {sorted(heads)}")
    for task in heads:
        check.nested("heads").integer(heads, task, 1, MAX_CLASSES)
    config = check.mapping(header, "model_config")
    unknown = sorted(set(config) - _TEMPORAL_KEYS)
    if unknown:
        raise check.fail("model_config", f"unknown fields {unknown}")
    inner = check.nested("model_config")
    inner.string(config, "cell", ("gru", "lstm"), default="gru")
    sizes = config.get("hidden_sizes", [100])
    if not isinstance(sizes, list) or not 0 < len(sizes) <= 16:
        raise inner.fail("hidden_sizes", "expected a list of 1 to 16 layer sizes")
    for i in range(len(sizes)):
        inner.nested("hidden_sizes").integer({str(i): sizes[i]}, str(i), 1, 8192)
    inner.boolean(config, "bidirectional", default=False)
    inner.boolean(config, "mask_channel", default=True)
    inner.number(config, "dropout", 0.0, 1.0, default=0.0)
    inner.string(config, "mode", MODES, default="seq2one")
    check.string(header, "mode", MODES, default=config.get("mode", "seq2one"))
    check.integer(header, "window", 1, 1_000_000, default=100)
    check.strings(header, "tasks", len(FRAME_TASKS), FRAME_TASKS, default=sorted(heads))
    check.strings(header, "expr_classes", MAX_CLASSES, default=[])
    check.mapping(header, "encoder", default={})
    ref = header.get("frame_checkpoint")
    if ref is not None:
        _check_frame_ref(check, ref)
    return header


def _check_frame_ref(check: HeaderChecker, ref: Any) -> None:
    """``frame_checkpoint``: sha256 + a file *name* (looked up beside the bundle only) + embedded header."""
    if not isinstance(ref, dict):
        raise check.fail("frame_checkpoint", "expected a JSON object")
    check = check.nested("frame_checkpoint")
    sha = check.string(ref, "sha256")
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise check.fail("sha256", "expected 64 lowercase hex digits")
    check.string(ref, "path", max_len=4096)
    if check.boolean(ref, "embedded", default=False):
        check.string(ref, "header", max_len=10_000_000)


def load_sequence_checkpoint(path: str | os.PathLike[str], device: str = "cpu") -> tuple[TemporalModel, dict]:
    """(temporal model in eval mode, header) from a sequence checkpoint file."""
    from safetensors.torch import load_file

    header = read_sequence_header(path)
    try:
        config = TemporalConfig(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in header["model_config"].items()})
        model = TemporalModel(header["input_dim"], header["heads"], config)
        tensors = load_file(str(path), device="cpu")
        model.load_state_dict({k[len("temporal."):]: v for k, v in tensors.items() if k.startswith("temporal.")})
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise InputError(path, f"sequence model does not match its header ({reason})") from None
    return model.to(device).eval(), header


def save_resume_checkpoint(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """Write a resume checkpoint atomically, in the forms :func:`load_resume_checkpoint` accepts.

    NumPy scalars and arrays (metrics in the history) become Python numbers and tensors:
    ``torch.load(weights_only=True)`` refuses NumPy's pickled globals.
    """
    target = Path(path)
    with atomic_path(target) as tmp:
        torch.save(plain_values(dict(payload)), tmp)
    return target


def plain_values(value: Any) -> Any:
    """``value`` with NumPy scalars/arrays replaced by Python numbers/tensors, recursively."""
    import numpy as np

    if isinstance(value, dict):
        out = copy.copy(value)  # keeps the type and attributes (a state_dict's ``_metadata``)
        for key, item in value.items():
            out[key] = plain_values(item)
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(plain_values(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    return value


def load_resume_checkpoint(path: str | os.PathLike[str], keys: tuple[str, ...] = ("model", "optimizer", "state")
                           ) -> dict[str, Any]:
    """A run's ``checkpoint_last.pt`` loaded with ``torch.load(weights_only=True)``.

    Resume checkpoints hold only tensors and plain containers/numbers/strings (weights,
    optimiser state, the training state as a dict), which torch's restricted unpickler
    reads; a file that needs anything else -- an arbitrary class, i.e. code run while
    unpickling -- is refused with a one-line ``InputError``, as is a file missing ``keys``.
    """
    import pickle

    path = Path(path)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(path, "resume checkpoint not found") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError) as err:
        raise InputError(path, f"not a loadable resume checkpoint ({_unpickle_reason(err)}); only tensors "
                               "and plain values are loaded from a checkpoint") from None
    if not isinstance(saved, dict) or not all(k in saved for k in keys):
        raise InputError(path, f"not an affectseq resume checkpoint (expected a dict with {', '.join(keys)})")
    return saved


def _unpickle_reason(err: BaseException) -> str:
    """One line from torch's multi-paragraph refusal: the line naming the refused global, if any."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    reason = (named or lines or [type(err).__name__])[0]
    return reason.rstrip(".")[:200]


@dataclass
class SequenceBundle:
    """Everything ``predict`` needs: the frame model (None for feature-only stores) and the temporal model."""

    frame_model: torch.nn.Module | None
    temporal_model: TemporalModel
    encoder_spec: dict[str, Any]
    mode: str
    window: int
    tasks: tuple[str, ...]
    expr_classes: tuple[str, ...]
    header: dict[str, Any] = field(repr=False, default_factory=dict)


def resolve_sequence_checkpoint(path_or_run_dir: str | os.PathLike[str]) -> Path:
    """A run directory means its ``checkpoint_best.safetensors``; a file is used as given."""
    path = Path(path_or_run_dir)
    return path / BEST_NAME if path.is_dir() else path


def load_sequence_bundle(path_or_run_dir: str | os.PathLike[str], device: str = "cpu") -> SequenceBundle:
    """Rebuild frame model + temporal model from a sequence run directory or checkpoint file.

    The frame model comes from the embedded copy, else from the referenced file
    (its sha256 must match; a relative lookup beside the checkpoint is tried when
    the absolute path moved). Stores of random/external features have no frame model.
    """
    path = resolve_sequence_checkpoint(path_or_run_dir)
    temporal, header = load_sequence_checkpoint(path, device)
    ref = header.get("frame_checkpoint")
    frame_model = None
    if ref:
        frame_model = _embedded_frame_model(path, ref, device) if ref.get("embedded") else \
            _referenced_frame_model(path, ref, device)
    return SequenceBundle(
        frame_model=frame_model,
        temporal_model=temporal,
        encoder_spec=dict(header.get("encoder") or {}),
        mode=str(header.get("mode", temporal.config.mode)),
        window=int(header.get("window", 100)),
        tasks=tuple(header.get("tasks", temporal.head_sizes)),
        expr_classes=tuple(header.get("expr_classes", ())),
        header=header,
    )


def _embedded_frame_model(path: Path, ref: Mapping[str, Any], device: str) -> torch.nn.Module:
    from safetensors import safe_open
    from safetensors.torch import save_file

    from affectseq.features.checkpoint import load_frame_model

    with safe_open(str(path), framework="pt") as fh:
        tensors = {k[len("frame."):]: fh.get_tensor(k) for k in fh.keys() if k.startswith("frame.")}
    # Round-trip through a frame checkpoint file so H4's loader stays the one way to build a frame model.
    with tempfile.TemporaryDirectory(prefix="affectseq-frame-") as tmp:
        frame_file = Path(tmp) / "frame.safetensors"
        save_file(tensors, str(frame_file), metadata={HEADER_KEY: ref["header"]})
        model = load_frame_model(frame_file, device=device)
    model.source_path = ref.get("path")  # type: ignore[assignment]
    return model


def _referenced_frame_model(path: Path, ref: Mapping[str, Any], device: str) -> torch.nn.Module:
    """The non-embedded frame model: the file of the recorded *name* beside the bundle, sha256-checked.

    The recorded path itself is never opened: a model file must not make us read
    arbitrary files, so only its base name is used, in the bundle's own folder.
    """
    from affectseq.features.checkpoint import load_frame_model

    name = Path(str(ref["path"]).replace("\\", "/")).name
    candidate = path.parent / name
    if name.endswith(".safetensors") and candidate.is_file() and sha256_file(candidate) == ref["sha256"]:
        return load_frame_model(candidate, device=device)
    raise InputError(path, f"frame model {name!r} (sha256 {ref['sha256'][:12]}...) not found beside the "
                           "sequence model, or changed; copy it next to the sequence model")
