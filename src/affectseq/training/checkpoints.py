"""Resume checkpoints of training runs (``checkpoint_last.pt``): plain values only, read with ``weights_only=True``.

Model files (frame models, sequence bundles) are written and read by :mod:`affectseq.modelfile`.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from affectseq.errors import InputError
from affectseq.utils.atomic import atomic_path


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
