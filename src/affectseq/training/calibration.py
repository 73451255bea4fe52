"""Post-hoc fixes of a trained expression model, fitted on validation predictions (NumPy only).

* **Prior correction** (post-hoc logit adjustment, Menon et al. 2021): ``logits - tau * log(prior)``
  with ``prior`` the training class frequencies. ``tau = 1`` turns the Bayes rule under the
  training prior into the one under a uniform prior, which maximises balanced accuracy (UAR);
  ``tau`` is chosen on validation. A per-class constant added to the logits is a change of the
  EXPR head's bias, so a corrected model is an ordinary model file (:func:`adjust_head_bias`).
* **Temperature scaling** (Guo et al. 2017): one ``T > 0`` dividing the logits, fitted by
  minimising the validation negative log-likelihood. It leaves every argmax, hence accuracy
  and UAR, unchanged; it is stored in the model header (``expr_temperature``).

Everything here takes *log-probabilities* as logits: they differ from the network's logits by a
per-row constant, which neither softmax nor argmax sees, so saved ``expr_prob`` files suffice.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from affectseq import metrics
from affectseq.modelfile.schema import TEMPERATURE_RANGE


def log_probs(probs: np.ndarray, eps: float = 1e-30) -> np.ndarray:
    """Log of probabilities ``(N, C)`` (clipped at ``eps``): logits up to a per-row constant."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), eps, None))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def prior_corrected(logits: np.ndarray, prior: np.ndarray, tau: float) -> np.ndarray:
    """``logits - tau * log(prior)``: the post-hoc logit adjustment of Menon et al. (2021)."""
    return np.asarray(logits, dtype=np.float64) - tau * np.log(np.asarray(prior, dtype=np.float64))


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """The temperature ``T`` minimising the mean NLL of ``softmax(logits / T)`` on annotated rows.

    A bounded one-dimensional search over ``log T`` within the header's allowed range
    (:data:`affectseq.modelfile.schema.TEMPERATURE_RANGE`); deterministic.
    """
    from scipy.optimize import minimize_scalar

    true = np.asarray(y_true).astype(np.int64).reshape(-1)
    keep = true >= 0
    z, true = np.asarray(logits, dtype=np.float64)[keep], true[keep]
    if true.size == 0:
        raise ValueError("fitting a temperature needs annotated rows")
    lo, hi = TEMPERATURE_RANGE

    def nll(log_t: float) -> float:
        return metrics.negative_log_likelihood(true, softmax(z / np.exp(log_t)))

    found = minimize_scalar(nll, bounds=(np.log(lo) + 1e-6, np.log(hi) - 1e-6), method="bounded",
                            options={"xatol": 1e-5})
    return float(np.exp(found.x))


def tau_sweep(logits: np.ndarray, y_true: np.ndarray, prior: np.ndarray,
              taus: Sequence[float]) -> list[dict[str, float]]:
    """Validation UAR and accuracy of the prior-corrected logits for each ``tau``."""
    num_classes = np.asarray(logits).shape[1]
    rows = []
    for tau in taus:
        pred = prior_corrected(logits, prior, tau).argmax(axis=1)
        rows.append({"tau": float(tau), "uar": metrics.uar(y_true, pred, num_classes),
                     "accuracy": metrics.accuracy(y_true, pred)})
    return rows


def choose_tau(rows: Sequence[dict[str, float]], min_accuracy: float) -> dict[str, float]:
    """The row of :func:`tau_sweep` with the highest UAR among those with accuracy >= ``min_accuracy``
    (ties: the smaller ``|tau|``); the ``tau = 0`` row if none qualifies."""
    allowed = [r for r in rows if r["accuracy"] >= min_accuracy]
    if not allowed:
        return min(rows, key=lambda r: abs(r["tau"]))
    return max(allowed, key=lambda r: (r["uar"], -abs(r["tau"])))


def adjust_head_bias(model: object, prior: np.ndarray, tau: float) -> None:
    """Bake the prior correction into a :class:`~affectseq.features.frame_model.FrameModel`'s EXPR head bias,
    in place: ``bias_c -= tau * log(prior_c)``."""
    import torch

    head = model.heads["expr"]  # type: ignore[attr-defined]
    offset = torch.as_tensor(tau * np.log(np.asarray(prior, dtype=np.float64)), dtype=head.bias.dtype)
    with torch.no_grad():
        head.bias -= offset
