"""Training losses: the torch CCC loss equals 1 - mean of affectseq.metrics CCCs; masks respected."""

from __future__ import annotations

import numpy as np
import torch

from affectseq import metrics
from affectseq.training.losses import au_loss, ccc_loss, expr_loss, mse_loss


def test_ccc_loss_equals_one_minus_metric_ccc() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(-1, 1, (200, 2)).astype(np.float32)
    pred = (0.6 * truth + rng.normal(0, 0.3, truth.shape) + 0.1).astype(np.float32)
    truth[::7] = np.nan  # unannotated frames are ignored by both
    loss = ccc_loss(torch.from_numpy(pred), torch.from_numpy(truth))
    expected = 1 - metrics.mean_ccc(truth, pred)
    assert abs(float(loss) - expected) < 1e-5
    assert 0.0 < float(loss) < 1.0
    perfect = torch.from_numpy(np.nan_to_num(truth))
    assert float(ccc_loss(perfect, perfect)) < 1e-6


def test_ccc_loss_is_differentiable_and_masked() -> None:
    pred = torch.zeros(6, 2, requires_grad=True)
    truth = torch.tensor([[0.1, 0.2], [0.5, -0.3], [float("nan")] * 2, [-0.4, 0.9], [0.0, 0.1], [0.3, 0.3]])
    loss = ccc_loss(torch.tanh(pred + torch.randn(6, 2) * 0.1), truth)
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert ccc_loss(torch.zeros(3, 2), torch.full((3, 2), float("nan"))) is None


def test_expr_loss_ignores_unannotated_frames() -> None:
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    target = torch.tensor([0, 1, -1])
    loss = expr_loss(logits, target)
    manual = torch.nn.functional.cross_entropy(logits[:2], target[:2])
    assert torch.isclose(loss, manual)
    assert expr_loss(logits, torch.full((3,), -1)) is None


def test_mse_and_au_losses_masked() -> None:
    truth = torch.tensor([[0.5, 0.5], [float("nan"), float("nan")]])
    assert torch.isclose(mse_loss(torch.tensor([[0.0, 0.5], [9.0, 9.0]]), truth), torch.tensor(0.125))
    au_true = torch.tensor([[1.0, -1.0], [0.0, -1.0]])
    logits = torch.tensor([[10.0, 123.0], [-10.0, -99.0]])
    assert float(au_loss(logits, au_true)) < 1e-3  # the -1 entries would dominate if counted
