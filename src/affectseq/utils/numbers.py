"""Numbers from users and files are checked for finiteness and range before anything uses them.

``float("nan")`` compares false with everything, so a plain ``value < 0`` check lets NaN
through (``--smoothing-sec nan`` became a silent "no face"), and ``inf`` silently means
"everything" (``--smoothing-sec inf`` averaged whole tracks). :func:`check_number` is the one
rule for an option's value (finite, then in range), :func:`finite_float` the ``argparse``
type that applies it on the command line, and :func:`nonfinite_summary` describes the
non-finite values of model outputs, for the one-line error that reports them as what they are.
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Mapping

from affectseq.errors import ConfigError


class NonFiniteOutput(ValueError):
    """A model stage produced NaN or inf; the message says where (``nonfinite_summary``)."""


def check_number(name: str, value: Any, lo: float | None = None, hi: float | None = None,
                 error: type[Exception] = ConfigError) -> float:
    """``value`` as a float when finite and in ``[lo, hi]``; ``error("NAME must be ..., got VALUE")`` otherwise."""
    bounds = " ".join(filter(None, [f">= {lo:g}" if lo is not None else "", "and" if None not in (lo, hi) else "",
                                    f"<= {hi:g}" if hi is not None else ""]))
    want = f"{name} must be a finite number{' ' + bounds if bounds else ''}"
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise error(f"{want}, got {str(value)[:40]!r}") from None
    if not math.isfinite(number) or (lo is not None and number < lo) or (hi is not None and number > hi):
        raise error(f"{want}, got {str(value)[:40]}")
    return number


def finite_float(text: str) -> float:
    """``argparse`` type: a finite float (``nan``, ``inf`` and overflowing numbers are usage errors)."""
    try:
        return check_number("the value", text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err).replace("the value must be", "must be")) from None


def nonfinite_summary(arrays: Mapping[str, Any]) -> str | None:
    """``"NaN in expr_prob for 72 of 72 rows"`` for the first array holding NaN or inf; ``None`` when all finite."""
    import numpy as np  # not at import time: the CLI imports this module for its option types

    for key, values in arrays.items():
        values = np.asarray(values)
        if values.dtype.kind != "f" or values.size == 0:
            continue
        bad = ~np.isfinite(values)
        if bad.any():
            kinds = " and ".join(k for k, hit in (("NaN", np.isnan(values).any()), ("inf", np.isinf(values).any()))
                                 if hit)
            rows = bad.reshape(len(values), -1).any(axis=1) if values.ndim else bad
            return f"{kinds} in {key} for {int(np.sum(rows))} of {len(rows) if values.ndim else 1} rows"
    return None


def nonfinite_weights(path: str) -> str | None:
    """``"NaN in tensor head.weight"`` for the first float tensor of a safetensors file holding NaN or inf;
    ``None`` when all are finite (tensors NumPy cannot represent, e.g. bfloat16, are left to the output check)."""
    import numpy as np
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        for key in fh.keys():
            try:
                tensor = fh.get_tensor(key)
            except Exception:  # noqa: BLE001 -- a dtype NumPy lacks
                continue
            if tensor.dtype.kind == "f" and not np.isfinite(tensor).all():
                kind = "NaN" if np.isnan(tensor).any() else "inf"
                return f"{kind} in tensor {key}"
    return None
