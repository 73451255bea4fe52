"""Task heads and head_outputs (affectseq.features.heads): known answers, and the two models that use them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from affectseq.features.heads import (
    OUTPUT_KEYS,
    PREDICTION_FILE_KEYS,
    TaskHeads,
    apply_heads,
    build_heads,
    head_outputs,
)


def test_head_outputs_known_answers() -> None:
    raw = {"expr": torch.tensor([[0.0, math.log(3.0)]]), "va": torch.tensor([[0.5, -0.25]]),
           "au": torch.tensor([[0.0, math.log(4.0)]])}
    out = head_outputs(raw)
    assert list(out) == ["expr_prob", "va", "au_prob"]
    np.testing.assert_allclose(out["expr_prob"].numpy(), [[0.25, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(out["va"].numpy(), [[0.5, -0.25]])
    np.testing.assert_allclose(out["au_prob"].numpy(), [[0.5, 0.8]], rtol=1e-6)


def test_head_outputs_any_leading_shape_half_precision_and_subsets() -> None:
    logits = torch.zeros(2, 5, 7, dtype=torch.float16)  # seq2seq: (batch, time, classes)
    out = head_outputs({"expr": logits})
    assert list(out) == ["expr_prob"] and out["expr_prob"].dtype == torch.float32
    np.testing.assert_allclose(out["expr_prob"].numpy(), np.full((2, 5, 7), 1 / 7), rtol=1e-6)


def test_head_outputs_refuses_unknown_heads() -> None:
    with pytest.raises(ValueError, match="unknown head 'pose'"):
        head_outputs({"pose": torch.zeros(1, 3)})


def test_prediction_file_keys_pair_each_output_with_its_truth() -> None:
    assert set(PREDICTION_FILE_KEYS) == set(OUTPUT_KEYS.values())
    assert PREDICTION_FILE_KEYS["va"] == "va_pred"  # beside va_true in val_predictions.npz


def test_build_heads_sizes_order_and_errors() -> None:
    heads = build_heads(4, {"va": 2, "expr": 8})
    assert list(heads) == ["va", "expr"]
    assert (heads["va"].in_features, heads["va"].out_features, heads["expr"].out_features) == (4, 2, 8)
    with pytest.raises(ValueError, match="non-empty subset"):
        build_heads(4, {})
    with pytest.raises(ValueError, match="non-empty subset"):
        build_heads(4, {"pose": 3})
    with pytest.raises(ValueError, match="2 outputs"):
        build_heads(4, {"va": 3})


def test_apply_heads_squashes_va_only() -> None:
    heads = build_heads(1, {"expr": 2, "va": 2})
    with torch.no_grad():
        for linear in heads.values():
            linear.weight.fill_(2.0)
            linear.bias.zero_()
        out = apply_heads(heads, torch.tensor([[1.0]]))
    np.testing.assert_allclose(out["expr"].numpy(), [[2.0, 2.0]])
    np.testing.assert_allclose(out["va"].numpy(), [[math.tanh(2.0)] * 2], rtol=1e-6)


def test_frame_and_temporal_models_keep_their_parameter_names() -> None:
    """Saved models load unchanged: the frame model's heads are ``heads.<task>``, a temporal model's
    ``heads.linears.<task>`` (the names before the two copies became one)."""
    from affectseq.features.encoders import create_encoder
    from affectseq.features.frame_model import FrameModel
    from affectseq.models.temporal import TemporalConfig, TemporalModel

    frame = FrameModel(create_encoder("paper_cnn"), ("expr", "va"))
    assert {k for k in frame.state_dict() if k.startswith("heads.")} == {
        "heads.expr.weight", "heads.expr.bias", "heads.va.weight", "heads.va.bias"}
    temporal = TemporalModel(8, {"va": 2}, TemporalConfig(hidden_sizes=(4,)))
    assert isinstance(temporal.heads, TaskHeads)
    assert {k for k in temporal.state_dict() if k.startswith("heads.")} == {
        "heads.linears.va.weight", "heads.linears.va.bias"}
