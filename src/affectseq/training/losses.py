"""Training losses (torch), masked so unannotated frames never contribute.

* EXPR: cross-entropy ignoring label ``-1`` (optional class weights, label smoothing), to hard labels or to
  target distributions (soft labels);
* VA: the paper's CCC loss ``1 - mean(CCC_valence, CCC_arousal)`` (population
  statistics, as :func:`affectseq.metrics.ccc`), or MSE;
* AU: binary cross-entropy over annotated (``>= 0``) entries.

Each returns ``None`` when the batch holds no annotated target for its task, so
a multi-task loop can add only the terms that exist.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def expr_loss(logits: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor | None = None,
              label_smoothing: float = 0.0) -> torch.Tensor | None:
    """Mean cross-entropy over annotated frames; ``None`` if there are none.

    ``target`` is either class indices (N,) with -1 = unannotated, or target
    distributions (N, C) (soft labels such as FER+'s crowd votes) with an
    all-zero row = unannotated: cross-entropy to the distribution.
    """
    valid = target.sum(dim=1) > 0 if target.is_floating_point() else target >= 0
    if not bool(valid.any()):
        return None
    return F.cross_entropy(logits[valid], target[valid], weight=class_weights, label_smoothing=label_smoothing)


def ccc_torch(y_true: torch.Tensor, y_pred: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Differentiable CCC of two 1-D tensors (population statistics, like affectseq.metrics.ccc)."""
    mean_t, mean_p = y_true.mean(), y_pred.mean()
    cov = ((y_true - mean_t) * (y_pred - mean_p)).mean()
    var_t = ((y_true - mean_t) ** 2).mean()
    var_p = ((y_pred - mean_p) ** 2).mean()
    return 2.0 * cov / (var_t + var_p + (mean_t - mean_p) ** 2 + eps)


def ccc_loss(va_pred: torch.Tensor, va_true: torch.Tensor) -> torch.Tensor | None:
    """The paper's VA loss ``1 - (CCC_v + CCC_a) / 2`` over frames whose VA is annotated (not NaN)."""
    valid = ~torch.isnan(va_true).any(dim=1)
    if int(valid.sum()) < 2:  # CCC needs a spread; one frame has none
        return None
    t, p = va_true[valid], va_pred[valid]
    return 1.0 - 0.5 * (ccc_torch(t[:, 0], p[:, 0]) + ccc_torch(t[:, 1], p[:, 1]))


def mse_loss(va_pred: torch.Tensor, va_true: torch.Tensor) -> torch.Tensor | None:
    """Mean squared error over annotated VA frames."""
    valid = ~torch.isnan(va_true).any(dim=1)
    if not bool(valid.any()):
        return None
    return F.mse_loss(va_pred[valid], va_true[valid])


def au_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Binary cross-entropy over AU entries that are annotated (``>= 0``)."""
    valid = target >= 0
    if not bool(valid.any()):
        return None
    return F.binary_cross_entropy_with_logits(logits[valid], target[valid].float())
