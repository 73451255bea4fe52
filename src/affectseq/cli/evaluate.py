"""``affectseq evaluate RUN_DIR`` (report on a run's predictions) and ``affectseq evaluate-model MODEL``
(score a trained frame model on one split of a dataset, then report)."""

from __future__ import annotations

import argparse

from affectseq.cli.layout_options import add_layout_options, layout_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a run's validation predictions and write its report",
        description="Read RUN_DIR/val_predictions.npz (and history.csv, run.json) and write metrics.json, "
        "confusion matrices (counts and row-normalised), a per-class table, VA plots, training curves "
        "and report.md.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a training run directory")
    parser.add_argument("--split", choices=("validation", "test"), default="validation",
                        help="which predictions to score: val_predictions.npz (default) or test_predictions.npz")
    parser.add_argument("--out", metavar="DIR", default=None, help="write the report here instead of RUN_DIR")
    _add_bootstrap(parser)
    parser.set_defaults(handler=run)

    model_parser = subparsers.add_parser(
        "evaluate-model",
        help="score a trained frame model on one split of a dataset and write its report",
        description="Run a frame model (a .safetensors file, a training run folder's checkpoint or 'default') "
        "over every frame of one split of a dataset (FER2013/FER+ .npz, image tree or ABAW root) and write "
        "OUT/<split>_predictions.npz, metrics.json (accuracy, UAR, macro-F1, ECE, NLL), confusion matrices, "
        "per-class tables, a reliability diagram and report.md.",
    )
    model_parser.add_argument("model", metavar="MODEL",
                              help="'default', a frame-model .safetensors file or a training run folder")
    model_parser.add_argument("--data", required=True, help="dataset path (any layout data inspect names; raw "
                                                            "videos and clips are cropped first, as train frames does)")
    add_layout_options(model_parser)
    model_parser.add_argument("--split", default="test", help="split name or alias (default: test)")
    model_parser.add_argument("--tta-flip", action="store_true",
                              help="average each face's probabilities with its mirror image's")
    model_parser.add_argument("--batch-size", type=int, default=256)
    model_parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    model_parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    model_parser.add_argument("--drop-class", action="append", default=[], metavar="CLASS",
                              help="leave out frames whose true class is CLASS, and the class itself "
                              "(repeatable; e.g. Contempt: the FER+ 7-class protocol)")
    model_parser.add_argument("--drop-train-duplicates", action="store_true",
                              help="leave out images whose pixels occur in the training split (.npz datasets)")
    _add_bootstrap(model_parser)
    model_parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    model_parser.set_defaults(handler=run_model)


def _add_bootstrap(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="add 95%% confidence intervals from N bootstrap resamples of the frames (e.g. 1000); "
                        "clip data always gets UAR/WAR intervals over clips (N, or 1000)")


def run(args: argparse.Namespace) -> int:
    """Evaluate one run and print its headline metrics."""
    from affectseq.evaluation.report import evaluate_run

    result = evaluate_run(args.run_dir, args.out, split=args.split, bootstrap=args.bootstrap)
    print(summary_line(result.metrics))
    print(f"report: {result.report_path}")
    return 0


def run_model(args: argparse.Namespace) -> int:
    """Score one model on one split, then write the report of those predictions."""
    import shlex
    import sys

    from affectseq.evaluation.report import evaluate_run
    from affectseq.data.splits import split_role
    from affectseq.training.scoring import ModelScoringConfig, score_frame_model

    from affectseq.prepare.face_crops import crops_for_training

    data, face_stage = crops_for_training(args.data, layout=args.layout, layout_options=layout_options(args))
    if face_stage:  # raw videos or clips: scored on their face crops, made or reused
        print(face_stage)
    config = ModelScoringConfig(model=args.model, data=str(data), split=args.split, tta_flip=args.tta_flip,
                                batch_size=args.batch_size, threads=args.threads,
                                device=args.device, drop_classes=tuple(args.drop_class),
                                drop_train_duplicates=args.drop_train_duplicates)
    _, scores = score_frame_model(config, args.out, command=shlex.join(["affectseq", *sys.argv[1:]]))
    result = evaluate_run(args.out, split=split_role(args.split), bootstrap=args.bootstrap)
    if scores["n_left_out"]:
        print(f"left out {int(scores['n_left_out'])} frames (--drop-class / --drop-train-duplicates)")
    print(summary_line(result.metrics))
    print(f"report: {result.report_path}")
    return 0


def summary_line(metrics: dict) -> str:
    """One line with the headline metric of every task present."""
    clip_rows = "clip" in metrics and metrics["clip"]["aggregation"] == "clip rows"
    parts = [] if clip_rows else [f"{metrics['n_frames']} frames"]  # a clip model's rows are clips, not frames
    if "clip" in metrics:
        clip = metrics["clip"]
        ci = clip.get("ci95")
        parts.append(f"{clip['n_clips']} clips: UAR={clip['uar']:.4f} WAR={clip['war']:.4f}"
                     + (f" (95% CI UAR [{ci['uar'][0]:.4f}, {ci['uar'][1]:.4f}] "
                        f"WAR [{ci['war'][0]:.4f}, {ci['war'][1]:.4f}])" if ci else ""))
    if "va" in metrics:
        va = metrics["va"]
        parts.append(f"CCC v={va['ccc_valence']:.4f} a={va['ccc_arousal']:.4f} mean={va['mean_ccc']:.4f}")
    if "expr" in metrics:
        ex = metrics["expr"]
        score = "" if ex["abaw_score"] is None else f" ABAW={ex['abaw_score']:.4f}"
        parts.append(f"EXPR acc={ex['accuracy']:.4f} UAR={ex['uar']:.4f} macro-F1={ex['macro_f1']:.4f}{score} "
                     f"ECE={ex['ece']:.4f} NLL={ex['nll']:.4f}")
        if "ci95" in ex:
            ci = ex["ci95"]
            parts.append("95% CI " + " ".join(f"{name} [{ci[key][0]:.4f}, {ci[key][1]:.4f}]" for key, name in (
                ("accuracy", "acc"), ("uar", "UAR"), ("macro_f1", "macro-F1"), ("ece", "ECE")) if key in ci))
    if "au" in metrics:
        parts.append(f"AU macro-F1={metrics['au']['au_macro_f1']:.4f}")
    return " | ".join(parts)
