"""GRU/LSTM temporal models: shapes in both modes, masking, streaming equals the batch forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectseq.models.streaming import StreamingPredictor
from affectseq.models.temporal import TemporalConfig, TemporalModel

HEADS = {"expr": 7, "va": 2, "au": 13}


def _model(**kw) -> TemporalModel:
    torch.manual_seed(0)
    return TemporalModel(12, HEADS, TemporalConfig(**kw)).eval()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("mode", ["seq2one", "seq2seq"])
def test_output_shapes_and_ranges(cell, bidirectional, mode):
    model = _model(cell=cell, bidirectional=bidirectional, mode=mode, hidden_sizes=(8, 6))
    out = model(torch.randn(4, 10, 12) * 5, torch.ones(4, 10, dtype=torch.bool))
    lead = (4,) if mode == "seq2one" else (4, 10)
    assert {k: tuple(v.shape) for k, v in out.items()} == {t: lead + (n,) for t, n in HEADS.items()}
    assert out["va"].abs().max() <= 1.0
    assert model.out_dim == 6 * (2 if bidirectional else 1)


def test_default_is_the_papers_gru_100_100_50():
    model = TemporalModel(300, {"expr": 7})
    assert [type(r).__name__ for r in model.backbone.rnns] == ["GRU", "GRU", "GRU"]
    assert [r.hidden_size for r in model.backbone.rnns] == [100, 100, 50]
    assert model.config.mode == "seq2one" and not model.config.args["bidirectional"] and model.causal


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("mode", ["seq2one", "seq2seq"])
def test_output_does_not_depend_on_values_at_masked_frames(cell, mode):
    model = _model(cell=cell, mode=mode, hidden_sizes=(8, 8))
    x = torch.randn(3, 15, 12)
    mask = torch.rand(3, 15) > 0.4
    x2 = x.clone()
    x2[~mask] = torch.randn(int((~mask).sum()), 12) * 100
    x2[0, 0] = float("nan") if not mask[0, 0] else x2[0, 0]
    a, b = model(x, mask), model(x2, mask)
    for task in HEADS:
        torch.testing.assert_close(a[task], b[task])
    # ... while the values at real frames do matter.
    x3 = x.clone()
    x3[mask] += 1.0
    assert not torch.allclose(model(x3, mask)["va"], a["va"])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_step_by_step_equals_batch_forward(cell):
    model = _model(cell=cell, mode="seq2seq", hidden_sizes=(8, 5))
    x = torch.randn(2, 9, 12)
    mask = torch.rand(2, 9) > 0.3
    full = model(x, mask)
    state = model.init_state(2)
    for t in range(9):
        out, state = model.step(x[:, t], mask[:, t], state)
        for task in HEADS:
            torch.testing.assert_close(out[task], full[task][:, t], atol=1e-5, rtol=1e-5)


def test_streaming_window_policy_matches_a_window_forward():
    model = _model(mode="seq2one", hidden_sizes=(8,))
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((7, 12)).astype(np.float32)
    faces = [True, True, False, True, True, True, True]
    stream = StreamingPredictor(model, window=4)
    for f, face in zip(frames, faces):
        got = stream.push(f if face else None, has_face=face)
    window = torch.from_numpy(frames[-4:])[None]
    mask = torch.tensor([faces[-4:]])
    want = model(window, mask)
    np.testing.assert_allclose(got["va"], want["va"][0].detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(got["expr_prob"].sum(), 1.0, atol=1e-6)
    assert stream.frames_seen == 7


def test_bidirectional_model_refuses_to_stream():
    with pytest.raises(ValueError, match="bidirectional"):
        _model(bidirectional=True).init_state()
