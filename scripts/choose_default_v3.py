"""Choose the default model v3 on FER+ validation only (docs/model_card.md, "v3"; issue #21).

Scores each candidate network on the validation split (one pass per face, as ``predict`` runs it,
and flip-averaged), adds the post-hoc prior correction of each with ``tau`` swept on validation,
picks the row with the highest validation UAR whose validation accuracy is at most
``--max-accuracy-drop`` below v2's, then fits the calibration temperature of that row on the same
validation predictions. Writes ``OUT/selection.json`` (every row, the choice, the temperature) and
``OUT/selection.md`` (the card's validation table). The test split is not read.

    python scripts/choose_default_v3.py --data ../shared/data/ferplus.npz --out /work/runs/v3_selection \\
        --candidate "v2=ferplus-v2" --candidate "logit-adjusted fine-tune=/work/runs/ferplus_v3_la"
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

TAUS = tuple(round(0.1 * k, 1) for k in range(-10, 21))  # -1.0 .. 2.0: a model trained logit-adjusted may need some prior back


def validation_probs(model_ref: str, data: str, cache: Path) -> dict[str, np.ndarray]:
    """One-pass and flip-averaged validation probabilities of a model (cached as npz under ``cache``)."""
    if cache.is_file():
        with np.load(cache) as saved:
            return dict(saved)
    from affectseq.data.ferplus import load_ferplus
    from affectseq.models.factory import load_frame_model
    from affectseq.training.scoring import make_eval_loader, predict_frames

    model = load_frame_model(model_ref)
    validation = load_ferplus(data, "validation")
    loader = make_eval_loader(validation, np.arange(len(validation)), model, batch_size=256)
    one = predict_frames(model, loader, with_loss=False)
    flip = predict_frames(model, loader, tta_flip=True, with_loss=False)
    out = {"y_true": one["expr_true"], "one_pass": one["expr_prob"], "flip": flip["expr_prob"]}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def training_prior(data: str, num_classes: int) -> np.ndarray:
    """FER+ training class frequencies (majority labels), as the logit-adjusted loss used them."""
    from affectseq.data.balance import class_prior
    from affectseq.data.ferplus import load_ferplus

    return class_prior(load_ferplus(data, "train").expr, num_classes)


def candidate_rows(name: str, probs: dict[str, np.ndarray], prior: np.ndarray, min_accuracy: float) -> list[dict]:
    """The candidate as trained, and with its prior correction (tau chosen on one-pass validation)."""
    from affectseq import metrics
    from affectseq.training import calibration as cal

    y = probs["y_true"]
    n = probs["one_pass"].shape[1]
    sweep = cal.tau_sweep(cal.log_probs(probs["one_pass"]), y, prior, TAUS)
    best = cal.choose_tau(sweep, min_accuracy)
    rows = []
    for tau, label in ((0.0, name), (best["tau"], f"{name} + prior correction (tau {best['tau']:.1f})")):
        row: dict = {"candidate": label, "base": name, "tau": tau}
        for mode in ("one_pass", "flip"):
            logits = cal.prior_corrected(cal.log_probs(probs[mode]), prior, tau)
            p = cal.softmax(logits)
            row[mode] = {"uar": metrics.uar(y, p, n), "accuracy": metrics.accuracy(y, p),
                         "macro_f1": metrics.macro_f1(y, p, n), "ece": metrics.expected_calibration_error(y, p),
                         "nll": metrics.negative_log_likelihood(y, p)}
        rows.append(row)
        if best["tau"] == 0.0:
            break
    return rows, sweep


def markdown(rows: list[dict], chosen: str) -> str:
    lines = ["| candidate | UAR (one pass) | accuracy (one pass) | UAR (flip) | accuracy (flip) | ECE (one pass, "
             "uncalibrated) |", "|---|---|---|---|---|---|"]
    for r in rows:
        mark = "**" if r["candidate"] == chosen else ""
        lines.append(f"| {mark}{r['candidate']}{mark} | {r['one_pass']['uar']:.4f} | {r['one_pass']['accuracy']:.4f} | "
                     f"{r['flip']['uar']:.4f} | {r['flip']['accuracy']:.4f} | {r['one_pass']['ece']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--candidate", action="append", required=True, metavar="NAME=MODEL",
                        help="a candidate network (a model file, run folder or shipped name); the first is the "
                        "baseline the accuracy guard refers to")
    parser.add_argument("--max-accuracy-drop", type=float, default=0.015)
    args = parser.parse_args(argv)

    from affectseq import metrics
    from affectseq.training import calibration as cal

    out = Path(args.out)
    refs = dict(c.split("=", 1) for c in args.candidate)
    probs = {name: validation_probs(ref, args.data, out / f"{name.replace(' ', '_')}_validation.npz")
             for name, ref in refs.items()}
    baseline = next(iter(refs))
    y = probs[baseline]["y_true"]
    min_accuracy = metrics.accuracy(y, probs[baseline]["one_pass"]) - args.max_accuracy_drop
    prior = training_prior(args.data, probs[baseline]["one_pass"].shape[1])
    rows, sweeps = [], {}
    for name in refs:
        found, sweeps[name] = candidate_rows(name, probs[name], prior, min_accuracy)
        rows += found
    allowed = [r for r in rows if r["one_pass"]["accuracy"] >= min_accuracy]
    chosen = max(allowed, key=lambda r: r["one_pass"]["uar"])
    logits = cal.prior_corrected(cal.log_probs(probs[chosen["base"]]["one_pass"]), prior, chosen["tau"])
    temperature = cal.fit_temperature(logits, y)
    calibrated = cal.softmax(logits / temperature)
    flip_calibrated = cal.softmax(cal.prior_corrected(cal.log_probs(probs[chosen["base"]]["flip"]), prior,
                                                      chosen["tau"]) / temperature)
    result = {
        "command": "python " + shlex.join(["scripts/choose_default_v3.py", *(argv or sys.argv[1:])]),
        "data": args.data, "split": "validation", "n": int(np.sum(y >= 0)), "prior": prior.tolist(),
        "candidates": refs, "min_accuracy": min_accuracy, "rows": rows, "tau_sweeps": sweeps,
        "chosen": {"candidate": chosen["candidate"], "base": chosen["base"], "model": refs[chosen["base"]],
                   "tau": chosen["tau"], "temperature": temperature,
                   "calibrated_one_pass": {"ece": metrics.expected_calibration_error(y, calibrated),
                                           "nll": metrics.negative_log_likelihood(y, calibrated)},
                   "calibrated_flip": {"ece": metrics.expected_calibration_error(y, flip_calibrated),
                                       "nll": metrics.negative_log_likelihood(y, flip_calibrated)}},
    }
    (out / "selection.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (out / "selection.md").write_text(markdown(rows, chosen["candidate"]), encoding="utf-8")
    print(markdown(rows, chosen["candidate"]))
    print(json.dumps(result["chosen"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
