"""Ship a training run's best checkpoint as the packaged default model, with its JSON card.

Maintainers only. Copies ``RUN/checkpoint_best.safetensors`` into ``src/affectseq/weights``
(:func:`export_shipped_model`) and writes the card: the run's own
selection metrics (from the checkpoint), then the shipped weights scored one pass per face (as
``predict`` uses them) on the validation split -- the number ``tests/test_default_model_guard.py``
holds the weights to -- and, once, on the test split with 95% bootstrap intervals.

    python scripts/ship_default_model.py runs/ferplus_default --data ../shared/data/ferplus.npz

With ``--selection OUT/selection.json`` (from ``scripts/choose_default_v3.py``, validation only) the
chosen network is first given its post-hoc prior correction (baked into the EXPR head's bias) and
its calibration temperature (the header's ``expr_temperature``), and the card records both.

    python scripts/ship_default_model.py --selection /work/runs/v3_selection/selection.json \
        --data ../shared/data/ferplus.npz --status "..."
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

CARD = {
    "terms": "Trained on FER+ labels (MIT, Microsoft) of the FER2013 images (released for research via the ICML "
             "2013 challenge): these weights are for research use only.",
    "init": "warm start from the first default model (fer2013-v1: MobileNetV2, ImageNet-initialised from a local "
            "file, trained on FER2013 train)",
    "smoothing_sec_default": 0.5,
    "model_card": "docs/model_card.md",
}


def export_shipped_model(run_dir: str | os.PathLike[str], name: str = "default",
                         card: dict[str, Any] | None = None, dest_dir: str | os.PathLike[str] | None = None) -> Path:
    """Copy a run's ``checkpoint_best.safetensors`` into the weights folder as shipped model ``name``.

    Writes the JSON card beside it: the run's validation metrics (from the checkpoint),
    its test metrics (``test_metrics.json``, when the run finished) and ``card`` entries.
    """
    import shutil

    from affectseq.features.shipped import SHIPPED_MODELS, weights_dir
    from affectseq.modelfile.frame import read_frame_model_header
    from affectseq.utils.atomic import atomic_path, write_json_atomic
    from affectseq.utils.hashing import sha256_file

    run = Path(run_dir)
    source = run / "checkpoint_best.safetensors"
    header = read_frame_model_header(source)
    target = Path(dest_dir or weights_dir()) / SHIPPED_MODELS[name]
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    test_file = run / "test_metrics.json"
    meta = header.get("meta", {})
    data = {
        "name": name,
        "file": target.name,
        "sha256": sha256_file(target),  # the card describes exactly these weights (tests/test_default_model_guard.py)
        "spec": header["encoder"],
        "tasks": header["tasks"],
        "expr_classes": header["expr_classes"],
        "selected_epoch": meta.get("epoch"),
        "val_metrics": meta.get("val_metrics"),
        "test_metrics": json.loads(test_file.read_text(encoding="utf-8")) if test_file.is_file() else None,
        "training_command": meta.get("command"),
        **(card or {}),
    }
    write_json_atomic(target.with_suffix(".json"), data)
    return target


def calibrated_run(selection_file: str, staging: Path) -> Path:
    """A run-like folder holding the selection's chosen network with its prior correction and temperature."""
    import numpy as np

    from affectseq.models.factory import load_frame_model, save_frame_model
    from affectseq.training.calibration import adjust_head_bias

    selection = json.loads(Path(selection_file).read_text(encoding="utf-8"))
    chosen = selection["chosen"]
    model = load_frame_model(chosen["model"])
    adjust_head_bias(model, np.asarray(selection["prior"]), chosen["tau"])
    model.expr_temperature = float(chosen["temperature"])
    calibration = {"prior_correction_tau": chosen["tau"], "prior": selection["prior"],
                   "temperature": chosen["temperature"], "base_model": chosen["model"],
                   "chosen_on": f"{selection['data']} {selection['split']}", "command": selection["command"]}
    meta = dict(getattr(model, "meta", {}) or {}, calibration=calibration)
    staging.mkdir(parents=True, exist_ok=True)
    save_frame_model(staging / "checkpoint_best.safetensors", model, meta)
    return staging


def one_pass_scores(model: str, data: str, split: str, bootstrap: int) -> dict:
    """Accuracy (WAR), UAR, macro-F1, ECE, NLL (+ 95% CIs) of ``model`` on one split, one pass per face."""
    from affectseq.evaluation.predictions import load_predictions
    from affectseq.evaluation.scores import compute_metrics
    from affectseq.training.scoring import ModelScoringConfig, score_frame_model

    with tempfile.TemporaryDirectory() as tmp:
        path, _ = score_frame_model(ModelScoringConfig(model=model, data=data, split=split), tmp)
        metrics = compute_metrics(load_predictions(path), bootstrap=bootstrap)
    expr = metrics["expr"]
    out = {"data": data, "split": split, "n": expr["n_frames"], "accuracy": expr["accuracy"],
           "macro_f1": expr["macro_f1"], "uar": expr["uar"], "ece": expr["ece"], "nll": expr["nll"],
           "tta_flip": False,
           "command": f"affectseq evaluate-model {model} --data {data} --split {split} --bootstrap {bootstrap}"}
    if "ci95" in expr:
        out["ci95"] = expr["ci95"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="training run folder (or --selection)")
    parser.add_argument("--selection", help="selection.json of scripts/choose_default_v3.py: ship its choice, "
                        "prior-corrected and calibrated")
    parser.add_argument("--data", required=True, help="the dataset the run was trained on")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--status", default="", help="one line for the card's status entry")
    args = parser.parse_args(argv)

    card = dict(CARD, status=args.status, ship_command="python " + shlex.join(sys.argv))
    if args.selection:
        run = calibrated_run(args.selection, Path(tempfile.mkdtemp(prefix="affectseq-ship-")))
        selection = json.loads(Path(args.selection).read_text(encoding="utf-8"))
        header = selection["chosen"]
        card.update(init=f"{header['model']}, prior-corrected (tau {header['tau']}) and temperature-scaled "
                    f"(T {header['temperature']:.4f}) on FER+ validation", selection=header,
                    validation_table=selection["rows"])  # every candidate; the first row is the baseline (v2)
    elif args.run:
        run = args.run
    else:
        parser.error("give a run folder or --selection")
    target = export_shipped_model(run, "default", card=card)
    card["validation_one_pass"] = one_pass_scores("default", args.data, "validation", 0)
    card["test_one_pass"] = one_pass_scores("default", args.data, "test", args.bootstrap)
    target = export_shipped_model(run, "default", card=card)
    print(json.dumps({k: card[k] for k in ("validation_one_pass", "test_one_pass")}, indent=1))
    print(f"shipped {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
