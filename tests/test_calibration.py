"""Issue #21: UAR, ECE, NLL, temperature scaling, post-hoc prior correction, the logit-adjusted loss and
the header's calibration temperature, on hand-computed values and synthetic data with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from affectseq import metrics as M
from affectseq.data.balance import class_prior
from affectseq.errors import InputError
from affectseq.training import calibration as cal
from affectseq.training.scoring import batch_loss

from test_predict_helpers import save_tiny_frame_model


def test_uar_is_the_mean_recall_of_the_classes_present() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 2, -1])
    pred = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    # recalls 3/4, 1/2, 1/1; the -1 row is unannotated; class 3 has no true frame and is left out.
    assert M.uar(y, pred, 4) == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    assert M.accuracy(y, pred) == pytest.approx(5 / 7)


def test_ece_hand_example_and_bins() -> None:
    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    bins = M.reliability_bins(y, probs, n_bins=5)
    # Confidences 0.9, 0.8, 0.6, 0.5 -> bins (0.8,1], (0.6,0.8], (0.4,0.6], (0.4,0.6].
    assert bins["count"].tolist() == [0, 0, 2, 1, 1]
    assert bins["confidence"][2] == pytest.approx(0.55) and bins["accuracy"][2] == pytest.approx(0.5)
    # |0.5-0.55|*2/4 + |1-0.8|/4 + |1-0.9|/4
    assert M.expected_calibration_error(y, probs, n_bins=5) == pytest.approx(0.025 + 0.05 + 0.025)
    assert M.negative_log_likelihood(y, probs) == pytest.approx(
        -np.mean(np.log([0.9, 0.8, 0.4, 0.5])))


def test_a_calibrated_model_has_ece_near_zero_and_an_overconfident_one_does_not() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    confidence = rng.uniform(0.5, 1.0, n)
    correct = rng.uniform(size=n) < confidence  # right with exactly the stated probability
    y = np.where(correct, 0, 1)
    probs = np.stack([confidence, 1 - confidence], axis=1)
    assert M.expected_calibration_error(y, probs) < 0.01
    overconfident = np.stack([np.full(n, 0.99), np.full(n, 0.01)], axis=1)
    assert M.expected_calibration_error(y, overconfident) == pytest.approx(0.99 - correct.mean(), abs=1e-9)


def test_fit_temperature_recovers_a_known_temperature() -> None:
    # Labels drawn from softmax(z / 2): the NLL-optimal temperature of the logits z is 2.
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, size=(40_000, 5))
    p = cal.softmax(z / 2.0)
    y = (p.cumsum(axis=1) > rng.uniform(size=(len(z), 1))).argmax(axis=1)
    t = cal.fit_temperature(z, y)
    assert t == pytest.approx(2.0, rel=0.05)
    before, after = M.expected_calibration_error(y, cal.softmax(z)), M.expected_calibration_error(y, cal.softmax(z / t))
    assert after < 0.015 < before
    # Log-probabilities are logits up to a per-row constant: the same temperature.
    assert cal.fit_temperature(cal.log_probs(cal.softmax(z)), y) == pytest.approx(t, rel=1e-3)


def test_prior_correction_with_tau_one_undoes_a_skewed_prior() -> None:
    # A classifier whose scores are the Bayes posterior under a skewed prior: subtracting log(prior)
    # (tau = 1) gives the uniform-prior decision, which raises UAR; tau = 0 changes nothing.
    rng = np.random.default_rng(2)
    prior = np.array([0.7, 0.2, 0.1])
    y = rng.choice(3, size=30_000, p=prior)
    means = np.eye(3) * 1.5
    x = means[y] + rng.normal(size=(len(y), 3))
    log_lik = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(axis=2)
    logits = log_lik + np.log(prior)
    rows = cal.tau_sweep(logits, y, prior, [0.0, 1.0])
    assert rows[0]["accuracy"] == pytest.approx(M.accuracy(y, logits))
    assert rows[1]["uar"] > rows[0]["uar"] + 0.05
    assert rows[1]["accuracy"] < rows[0]["accuracy"]  # the price: fewer majority-class hits
    assert cal.choose_tau(rows, min_accuracy=0.0)["tau"] == 1.0
    assert cal.choose_tau(rows, min_accuracy=rows[0]["accuracy"])["tau"] == 0.0  # the guard binds


def test_class_prior_and_the_logit_adjusted_loss() -> None:
    prior = class_prior(np.array([0, 0, 0, 1, -1]), 3, pseudo_count=1.0)
    assert prior.tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.3]])
    target = torch.tensor([0, 2])
    offset = torch.from_numpy(np.log(prior)).float()
    adjusted = batch_loss({"expr": logits}, target, torch.zeros(2, 2), torch.zeros(2, 13), expr_logit_offset=offset)
    expected = torch.nn.functional.cross_entropy(logits + offset, target)
    assert float(adjusted) == pytest.approx(float(expected))
    assert float(adjusted) != pytest.approx(float(batch_loss({"expr": logits}, target, torch.zeros(2, 2),
                                                             torch.zeros(2, 13))))


def test_temperature_and_bias_survive_the_model_file(tmp_path: Path) -> None:
    from affectseq.modelfile.frame import read_frame_model_header
    from affectseq.models.factory import load_frame_model, save_frame_model

    plain = load_frame_model(save_tiny_frame_model(tmp_path / "plain.safetensors"))
    assert plain.expr_temperature == 1.0
    assert "expr_temperature" not in read_frame_model_header(tmp_path / "plain.safetensors")
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        raw = plain(x)["expr"]
    prior = np.array([0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    cal.adjust_head_bias(plain, prior, tau=0.5)
    plain.expr_temperature = 0.6
    path = save_frame_model(tmp_path / "calibrated.safetensors", plain, {"note": "test"})
    assert read_frame_model_header(path)["expr_temperature"] == 0.6
    loaded = load_frame_model(path)
    assert loaded.expr_temperature == 0.6
    with torch.no_grad():
        out = loaded(x)["expr"]
    expected = (raw - 0.5 * torch.from_numpy(np.log(prior)).float()) / 0.6
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.equal(out.argmax(1), (raw - 0.5 * torch.from_numpy(np.log(prior)).float()).argmax(1))


@pytest.mark.parametrize("bad", [0.0, -1.0, 1e6, math.inf, "1.0"])
def test_a_bad_temperature_in_a_header_is_one_clear_line(tmp_path: Path, bad) -> None:
    import json

    from affectseq.models.factory import load_frame_model
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = save_tiny_frame_model(tmp_path / "m.safetensors")
    with safe_open(str(path), "pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    key = next(k for k, v in metadata.items() if v.lstrip().startswith("{") and "dropout" in v)
    header = json.loads(metadata[key])
    header["expr_temperature"] = bad
    save_file(tensors, str(path), metadata={**metadata, key: json.dumps(header)})
    # JSON's Infinity is refused while the header is parsed, before any field is read (#22)
    expected = "non-finite number" if bad == math.inf else "expr_temperature"
    with pytest.raises(InputError, match=expected):
        load_frame_model(path)


def test_evaluate_reports_uar_ece_nll_and_a_reliability_diagram(tmp_path: Path, capsys) -> None:
    import json

    from affectseq.cli import main
    from test_evaluation_report import _fabricate

    run_dir = tmp_path / "run"
    _fabricate(run_dir)  # every annotated frame at confidence 0.94; the 20 Fear frames wrong, 115 of 135 right
    assert main(["evaluate", str(run_dir), "--bootstrap", "50"]) == 0
    assert "UAR=0.8571" in capsys.readouterr().out
    ex = json.loads((run_dir / "metrics.json").read_text())["expr"]
    assert ex["uar"] == pytest.approx(6 / 7)  # Fear's recall 0, six classes 1
    assert ex["ece"] == pytest.approx(0.94 - 115 / 135, abs=1e-6)  # one bin: |accuracy - confidence|
    assert ex["nll"] == pytest.approx((115 * -math.log(0.94) + 20 * -math.log(0.01)) / 135, rel=1e-5)
    assert ex["ece_bins"] == 15
    low, high = ex["ci95"]["ece"]
    assert low <= ex["ece"] <= high and ex["ci95"]["uar"][0] <= ex["uar"] <= ex["ci95"]["uar"][1]
    assert (run_dir / "report" / "reliability.png").stat().st_size > 0
    assert "reliability.png" in (run_dir / "report.md").read_text()
