"""The safetensors container of every model file: tensors + the ``affectseq`` header JSON, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from affectseq.errors import InputError, first_line
from affectseq.modelfile.legacy import upgrade_v1
from affectseq.modelfile.schema import (
    FRAME_FORMAT,
    SCHEMA_VERSION,
    HeaderChecker,
    check_format,
    check_header,
    parse_header_json,
)
from affectseq.utils.atomic import atomic_path

if TYPE_CHECKING:  # torch only names the tensors written; reading a header needs no torch
    import torch

HEADER_KEY = "affectseq"


def read_safetensors_metadata(path: str | os.PathLike[str], what: str) -> dict[str, str]:
    """The string metadata of a safetensors file; InputError for a missing file or one that is not safetensors.

    Read without torch (NumPy framework): a header is all that is needed to tell what a file is.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} file not found")
    try:
        with safe_open(str(path), framework="numpy") as fh:  # metadata only: no torch
            metadata = fh.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for a foreign file
        reason = first_line(err)[:120] or type(err).__name__
        raise InputError(path, f"not an affectseq {what} (not a safetensors file: {reason})") from None
    return metadata


def read_raw_header(path: str | os.PathLike[str], what: str = "model") -> dict[str, Any]:
    """The header JSON object of a model file, not yet schema-checked (InputError if absent or not an object)."""
    return parse_header_json(path, read_safetensors_metadata(path, what).get(HEADER_KEY), what)


def read_header(path: str | os.PathLike[str], fmt: str, what: str) -> dict[str, Any]:
    """The schema-checked (version 2) header of a model file of format ``fmt``; version-1 headers are upgraded."""
    return checked_header(path, read_raw_header(path, what), fmt)


def checked_header(path: str | os.PathLike[str], header: dict[str, Any], fmt: str) -> dict[str, Any]:
    """``header`` (parsed JSON of a file at ``path``) checked as format ``fmt``, in its version-2 form."""
    check = HeaderChecker(path, "frame model" if fmt == FRAME_FORMAT else "sequence model")
    check_format(check, header, fmt, SCHEMA_VERSION)
    legacy = header.get("version", 0) < SCHEMA_VERSION
    if legacy:
        header = upgrade_v1(check, header, fmt)
    return check_header(check, header, fmt, legacy)


def model_format(path: str | os.PathLike[str]) -> str:
    """The ``format`` a model file declares (``affectseq.frame_model`` / ``affectseq.sequence_model``).

    Only the kind is read here; the header is checked by the reader of that kind.
    """
    header = read_raw_header(path)
    fmt = header.get("format")
    if not isinstance(fmt, str) or not fmt.startswith("affectseq."):
        raise InputError(path, f"not an affectseq model (format {json.dumps(fmt)[:60]})")
    return fmt


def write_model_file(path: str | os.PathLike[str], tensors: Mapping[str, "torch.Tensor"], header: dict[str, Any],
                     fmt: str) -> Path:
    """Write ``tensors`` + ``header`` atomically, after checking ``header`` against the schema.

    The check on write means a file this affectseq writes is one it reads.
    """
    from safetensors.torch import save_file

    target = Path(path)
    header = json.loads(json.dumps(header, default=_plain))
    checked_header(target, header, fmt)
    # safetensors refuses shared/non-contiguous storage; each tensor gets its own block.
    plain = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    with atomic_path(target) as tmp:
        save_file(plain, str(tmp), metadata={HEADER_KEY: json.dumps(header)})
    return target


def _plain(obj: Any) -> Any:
    if hasattr(obj, "item") and getattr(obj, "ndim", 0) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
