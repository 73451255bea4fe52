"""``affectseq experiment paper``: the paper's ablation (CNN vs. CNN + RNN, unbalanced vs. balanced) in one command."""

from __future__ import annotations

import argparse
import shlex


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``experiment`` with its ``paper`` study."""
    parser = subparsers.add_parser("experiment", help="reproducible studies (the paper's ablation)")
    studies = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    paper = studies.add_parser(
        "paper",
        help="CNN alone vs. CNN+RNN, each unbalanced vs. balanced, scored on identical validation frames",
        description="Train the paper's rows on an ABAW-layout dataset and print/write the results table "
        "(results.csv, results.md) and every row's confusion matrices. Rerunning into the same --out "
        "resumes and skips finished steps.",
    )
    paper.add_argument("--data", metavar="PATH", help="ABAW-layout dataset root (Aff-Wild2 or synthetic); "
                       "with --quick and no --data a tiny synthetic dataset is generated in OUT/data")
    paper.add_argument("--task", choices=("va", "expr", "both"), default=None, help="tasks to study (default both)")
    paper.add_argument("--quick", action="store_true",
                       help="small preset (tiny CNN at 64 px, short windows, few epochs): minutes on 2 CPU cores")
    paper.add_argument("--seed", type=int, default=None, help="seed of data generation, sampling and training")
    paper.add_argument("--out", metavar="DIR", default="runs/paper_study", help="output folder (default %(default)s)")
    paper.add_argument("--shuffle-time", action="store_true",
                       help="negative control: also train the RNNs on features shuffled in time within each "
                       "video (features and labels moved together)")
    paper.add_argument("--config", metavar="YAML", help="study config file (see affectseq.experiments.study_config)")
    paper.add_argument("--set", metavar="KEY=VALUE", nargs="*", default=[], dest="overrides",
                       help="config overrides, e.g. frame.epochs=10 sequence.window=50")
    paper.set_defaults(handler=run_paper)
    agg = studies.add_parser("aggregate", help="mean +- std of several study results.csv files (seeds)",
                             description="Combine results.csv of studies run with different seeds into "
                             "mean +- std per task and row.")
    agg.add_argument("tables", nargs="+", metavar="RESULTS_CSV")
    agg.add_argument("--out", metavar="FILE", help="also write the summary as CSV here")
    agg.set_defaults(handler=run_aggregate)


def run_paper(args: argparse.Namespace) -> int:
    """Run the study and print its table."""
    from affectseq.experiments.paper import run_paper_study
    from affectseq.experiments.study_config import load_study_config

    config = load_study_config(quick=args.quick, path=args.config, overrides=args.overrides, task=args.task,
                               seed=args.seed, shuffle_time=True if args.shuffle_time else None)
    command = _command_line(args)
    result = run_paper_study(args.data, args.out, config, quick=args.quick, command=command)
    print(result.summary())
    print(f"\nresults: {result.files['markdown']} and {result.files['csv']}")
    return 0


def run_aggregate(args: argparse.Namespace) -> int:
    """Print per-task Markdown tables of mean +- std over the given results tables."""
    from affectseq.experiments.aggregate import aggregate, format_mean_std, load_tables
    from affectseq.utils.atomic import write_text_atomic

    summary = aggregate(load_tables(args.tables))
    for task in summary["task"].unique():
        print(f"{task}:\n{format_mean_std(summary, task)}")
    if args.out:
        write_text_atomic(args.out, summary.to_csv(index=False, float_format="%.6f"))
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The invocation as a shell command (recorded in run.json and results.md), rebuilt from the parsed options."""
    parts = ["affectseq", "experiment", "paper"]
    for flag, value in (("--data", args.data), ("--task", args.task), ("--seed", args.seed), ("--out", args.out),
                        ("--config", args.config)):
        if value is not None:
            parts += [flag, str(value)]
    parts += [flag for flag, on in (("--quick", args.quick), ("--shuffle-time", args.shuffle_time)) if on]
    if args.overrides:
        parts += ["--set", *args.overrides]
    return " ".join(shlex.quote(p) for p in parts)
