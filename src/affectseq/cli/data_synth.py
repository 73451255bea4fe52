"""``affectseq data synth OUT``: write a synthetic Aff-Wild2-like dataset (ABAW 6, video+CSV or clip_folders layout).

Registered under the ``data`` group by :mod:`affectseq.cli.data`. Settings come from the
:class:`~affectseq.data.synth.SynthConfig` defaults, an optional ``--config`` YAML and
``KEY=VALUE`` overrides (right after OUT, or anywhere as ``--set KEY=VALUE``); ``--videos/--frames/--seed``
are shortcuts for the most used ones and win over both. ``--layout video_csv`` also sets
``two_person_fraction=0`` (one person per CSV) unless an override says otherwise; ``--layout
clip_folders`` writes ``--videos`` clips of ``n_frames=48`` (unless given), one expression each.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from affectseq.data.synth import SynthSummary


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` subcommand to the ``data`` group's subparsers."""
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic Aff-Wild2-like dataset with known answers (for tests and controlled experiments)",
        description="Write a synthetic Aff-Wild2-like dataset in the ABAW 6 layout: raw mp4 videos, "
                    "cropped_aligned face crops with gaps, VA/EXPR/AU annotation files (Train_Set, Validation_Set), "
                    "some two-person _left/_right videos, ground truth of the latent affect state, and the "
                    "resolved synth_config.yaml. Rendered cartoon faces, not a substitute for real data. "
                    "Rerunning into the same folder resumes (finished videos are skipped).",
    )
    parser.add_argument("out", metavar="OUT", help="output folder (created; resumed if it holds an unfinished run)")
    parser.add_argument("--videos", type=int, default=None, metavar="N",
                        help="raw videos (config n_videos, default 20)")
    parser.add_argument("--frames", type=int, default=None, metavar="M",
                        help="frames per video (config n_frames, default 300)")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="random seed (config seed, default 0)")
    parser.add_argument("--layout", choices=("abaw6", "video_csv", "clip_folders"), default=None,
                        help="abaw6 (default): the ABAW 6 tree; video_csv: train/ and validation/ folders of "
                             "<video>.mp4 + <video>.csv, no crops, one person per video; clip_folders: "
                             "train/ and validation/ <class>/<clip>.mp4, one expression per clip (default "
                             "48 frames each) plus clips.csv listing them (config layout)")
    parser.add_argument("--config", default=None, metavar="YAML", help="YAML file with SynthConfig fields")
    parser.add_argument("--workers", type=int, default=None, metavar="K",
                        help="processes rendering videos in parallel (default: CPUs available); output is the same")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides right after OUT, e.g. affect.onset_sec=0.3 nuisance.absent_frac=0.1")
    parser.add_argument("--set", dest="set_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override that may stand anywhere (repeatable)")
    parser.set_defaults(handler=_synth)


def _synth(args: argparse.Namespace) -> int:
    from affectseq.config import load_config
    from affectseq.data.synth import SynthConfig, generate
    from affectseq.errors import ConfigError

    overrides = list(args.overrides) + list(args.set_overrides)
    if args.layout == "video_csv":
        # One person per CSV: no two-person videos, unless the user asks for them (and is told why not).
        overrides.insert(0, "two_person_fraction=0")
    if args.layout == "clip_folders":
        overrides.insert(0, "n_frames=48")  # short clips (about 2 s at 25 fps), unless the user says otherwise
    for flag, key in (("videos", "n_videos"), ("frames", "n_frames"), ("seed", "seed"), ("layout", "layout")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    config = load_config(SynthConfig, args.config, overrides)
    summary = generate(args.out, config, workers=args.workers, show_progress=False if args.no_progress else None)
    _print_summary(summary)
    return 0


def _print_video_counts(console, summary: SynthSummary) -> None:
    console.print(
        f"[bold]{summary.out_dir}[/bold]: {summary.raw_videos} raw videos, {summary.annotated_videos} annotated "
        f"(two-person videos count twice), {summary.frames:,} frames, {summary.frames_with_crop:,} with a face crop; "
        f"made {summary.generated}, kept {summary.skipped} finished, in {summary.elapsed_sec:.1f} s "
        f"({summary.workers} worker{'s' if summary.workers != 1 else ''})"
    )


def _print_summary(summary: SynthSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if summary.layout == "clip_folders":
        console.print(f"[bold]{summary.out_dir}[/bold]: {summary.raw_videos} clips ({summary.frames:,} frames), one "
                      f"expression each; made {summary.generated}, kept {summary.skipped} finished, in "
                      f"{summary.elapsed_sec:.1f} s; clip list: {summary.out_dir / 'clips.csv'}")
    else:
        _print_video_counts(console, summary)
    table = Table(title="annotated videos per task", title_justify="left")
    splits = list(next(iter(summary.videos_per_task.values())))
    table.add_column("task")
    for split in splits:
        table.add_column(split, justify="right")
    for task, counts in summary.videos_per_task.items():
        table.add_row(task, *(str(counts[s]) for s in splits))
    console.print(table)
    total = sum(summary.expr_counts.values()) or 1
    hist = Table(title="EXPR annotated frames per class (all splits)", title_justify="left")
    hist.add_column("class")
    hist.add_column("frames", justify="right")
    for name, count in summary.expr_counts.items():
        hist.add_row(name, f"{count:,} ({100 * count / total:.1f}%)")
    hist.add_row("imbalance (max/min)", f"{summary.imbalance_ratio:.1f}", style="bold")
    console.print(hist)
    console.print(f"config: {summary.out_dir / 'synth_config.yaml'}; "
                  f"inspect with: affectseq data inspect {summary.out_dir}")
