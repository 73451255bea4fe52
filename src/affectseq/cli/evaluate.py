"""``affectseq evaluate RUN_DIR``: metrics.json, figures, tables and report.md for a training run."""

from __future__ import annotations

import argparse


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
    parser.add_argument("--out", metavar="DIR", default=None, help="write the report here instead of RUN_DIR")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate one run and print its headline metrics."""
    from affectseq.evaluation.report import evaluate_run

    result = evaluate_run(args.run_dir, args.out)
    print(summary_line(result.metrics))
    print(f"report: {result.report_path}")
    return 0


def summary_line(metrics: dict) -> str:
    """One line with the headline metric of every task present."""
    parts = [f"{metrics['n_frames']} frames"]
    if "va" in metrics:
        va = metrics["va"]
        parts.append(f"CCC v={va['ccc_valence']:.4f} a={va['ccc_arousal']:.4f} mean={va['mean_ccc']:.4f}")
    if "expr" in metrics:
        ex = metrics["expr"]
        score = "" if ex["abaw_score"] is None else f" ABAW={ex['abaw_score']:.4f}"
        parts.append(f"EXPR acc={ex['accuracy']:.4f} macro-F1={ex['macro_f1']:.4f}{score}")
    if "au" in metrics:
        parts.append(f"AU macro-F1={metrics['au']['au_macro_f1']:.4f}")
    return " | ".join(parts)
