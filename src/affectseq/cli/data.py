"""``affectseq data ...``: dataset tools. ``inspect`` lives here, ``synth`` in :mod:`affectseq.cli.data_synth`,
``faces`` in :mod:`affectseq.cli.data_faces`.

``affectseq data inspect PATH [--json] [--strict]`` detects the layout through the
registry (ABAW 2020/3/6 trees, FER2013/FER+ .npz, class-per-folder images, video + CSV,
clip datasets, and any registered layout; ``--list-layouts`` lists them) and prints per
task and split: videos, frames, annotated frames, frames without a face crop, the class
histogram with percent and imbalance ratio, VA mean/std and quadrant shares, AU positive
rates, and the problems found in the files.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from affectseq.cli.data_faces import register as register_faces
from affectseq.cli.layout_options import add_layout_options, layout_options
from affectseq.cli.data_synth import register as register_synth

WARNINGS_SHOWN = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group and its subcommands."""
    parser = subparsers.add_parser("data", help="dataset tools: inspect a dataset, generate a synthetic one, "
                                                "crop the faces of a dataset's videos",
                                   description="Dataset tools.")
    data_subparsers = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=lambda args: _print_help(parser))

    inspect = data_subparsers.add_parser(
        "inspect", help="counts, class balance and label statistics of a dataset",
        description="Detect a dataset's layout (Aff-Wild2/ABAW 2020, 3-5, 6+; FER2013/FER+ .npz; "
                    "class-per-folder images; videos with per-frame CSVs; labelled clips: clip_folders, "
                    "clip_list, DFEW, FERV39k, MAFW, AFEW, RAVDESS, CREMA-D; any registered layout) and report "
                    "per task and split: "
                    "videos, frames, annotated frames, frames without a face crop, the class histogram "
                    "and imbalance ratio, valence/arousal mean, std and quadrant shares.")
    inspect.add_argument("path", nargs="?", help="dataset root folder, clip list CSV or FER2013/FER+ .npz")
    inspect.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    inspect.add_argument("--strict", action="store_true",
                         help="stop at the first malformed file or row instead of counting warnings")
    inspect.add_argument("--list-layouts", action="store_true",
                         help="list the registered layouts in detection order and exit")
    add_layout_options(inspect)
    inspect.set_defaults(handler=_inspect)

    register_synth(data_subparsers)  # ``data synth`` lives in its own module (cli.data_synth)
    register_faces(data_subparsers)  # ``data faces`` too (cli.data_faces)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _inspect(args: argparse.Namespace) -> int:
    from affectseq.data.inspect import inspect_dataset
    from affectseq.errors import ConfigError

    if args.list_layouts:
        return _list_layouts()
    if args.path is None:
        raise ConfigError("data inspect needs a dataset PATH (or --list-layouts)")
    report = inspect_dataset(args.path, strict=args.strict, layout=args.layout, **layout_options(args))
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render_report(report)
    return 0


def _list_layouts() -> int:
    from affectseq.data.registry import registered_layouts

    for layout in registered_layouts():
        options = f" (options: {', '.join('--' + o for o in layout.options)})" if layout.options else ""
        print(f"{layout.priority:>3}  {layout.name:<14} {layout.kind:<7} {layout.summary}{options}")
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_report(report: dict[str, Any]) -> None:
    """Print an inspect report as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    level = report.get("label_level", "frame")
    console.print(f"[bold]{report['root']}[/bold]  layout: [cyan]{report['layout']}[/cyan]"
                  + ("  (one label per clip: each video is a clip)" if level == "clip" else ""))
    for note in report.get("notes", []):
        console.print(f"  note: {note}", markup=False, highlight=False, soft_wrap=True)
    for task, splits in report["tasks"].items():
        names = list(splits)
        table = Table(title=f"{task}: counts", title_justify="left")
        table.add_column("")
        for name in names:
            table.add_column(name, justify="right")
        for key, label in [("videos", "videos"), ("frames", "frames"), ("annotated_frames", "annotated frames"),
                           ("frames_without_face", "frames without face crop"),
                           ("annotated_frames_with_face", "annotated frames with face"),
                           ("videos_with_raw_video", "videos with raw video")]:
            table.add_row(label, *(f"{splits[s].get(key, 0):,}" for s in names))
        console.print(table)
        if task == "EXPR":
            _render_expr(console, Table, splits, names)
        elif task == "VA":
            _render_va(console, Table, splits, names)
        elif task == "AU":
            _render_au(console, Table, splits, names)
    warnings = report.get("warnings", {"count": 0, "listed": []})
    if warnings["count"]:
        console.print(f"[yellow]{warnings['count']} problem(s) found[/yellow] (files skipped or rows masked):")
        for line in warnings["listed"][:WARNINGS_SHOWN]:
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
        if warnings["count"] > WARNINGS_SHOWN:
            console.print(f"  ... see --json for up to {len(warnings['listed'])} listed, or --strict to stop at the first")
    else:
        console.print("no problems found")


def _render_expr(console, Table, splits: dict[str, Any], names: list[str]) -> None:
    table = Table(title="EXPR: class histogram (annotated frames)", title_justify="left")
    table.add_column("class")
    for name in names:
        table.add_column(name, justify="right")
    classes = list(next(iter(splits.values()))["class_counts"]) if splits else []
    for cls in classes:
        table.add_row(cls, *(f"{splits[s]['class_counts'].get(cls, 0):,} ({splits[s]['class_percent'].get(cls, 0):.1f}%)"
                             for s in names))
    table.add_row("imbalance (max/min)", *(_ratio(splits[s]) for s in names), style="bold")
    console.print(table)


def _ratio(stats: dict[str, Any]) -> str:
    if stats.get("imbalance_ratio") is not None:
        return f"{stats['imbalance_ratio']:.1f}"
    if stats.get("imbalance_ratio_nonempty") is not None:
        return f"inf ({stats['imbalance_ratio_nonempty']:.1f} w/o empty)"
    return "-"


def _render_va(console, Table, splits: dict[str, Any], names: list[str]) -> None:
    table = Table(title="VA: annotated frames", title_justify="left")
    table.add_column("")
    for name in names:
        table.add_column(name, justify="right")
    for dim in ("valence", "arousal"):
        table.add_row(f"{dim} mean ± std", *(f"{_num(splits[s]['va'][dim]['mean'])} ± {_num(splits[s]['va'][dim]['std'])}"
                                           for s in names))
    for quadrant in ("V+A+", "V-A+", "V-A-", "V+A-"):
        table.add_row(f"quadrant {quadrant}", *(_pct(splits[s]["quadrant_share"][quadrant]) for s in names))
    console.print(table)


def _render_au(console, Table, splits: dict[str, Any], names: list[str]) -> None:
    table = Table(title="AU: positive rate among annotated frames", title_justify="left")
    table.add_column("AU")
    for name in names:
        table.add_column(name, justify="right")
    aus = list(next(iter(splits.values()))["au_positive_rate"]) if splits else []
    for au in aus:
        table.add_row(au, *(_pct(splits[s]["au_positive_rate"][au]) for s in names))
    console.print(table)
