"""``affectseq predict VIDEO_OR_DIR... -o OUT``: per-frame emotions for any video."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from affectseq.cli.options import (add_engine_options, add_face_options, add_output_options, add_param_argument,
                                  add_runtime_options, face_settings, output_options, ray_options)

DEFAULT_OUT = "affectseq_predictions"


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``predict`` and ``demo``: how the model and faces run (the output files are
    :func:`~affectseq.cli.options.add_output_options`)."""
    from affectseq.predict.pipeline import PredictOptions

    add_face_options(parser)
    add_runtime_options(parser)
    parser.add_argument("--tta-flip", action="store_true",
                        help="average each face's probabilities with its mirror image's: a little more "
                             "accurate, about twice the model's time per face (frame models; see the model card)")
    add_param_argument(parser, "mode", PredictOptions.PARAMS["mode"])  # declared with PredictOptions
    add_param_argument(parser, "batch_size", PredictOptions.PARAMS["batch_size"])
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers: Any) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="per-frame expressions (and VA) for videos or folders of videos",
        description="Detect, track and align faces, then classify every frame. Writes OUT/<video>/frames.csv, "
                    "summary.json, timeline.png (and overlay.mp4 with --overlay).",
    )
    parser.add_argument("inputs", nargs="+", metavar="VIDEO_OR_DIR", help="video files and/or folders of videos")
    parser.add_argument("-o", "--out", default=DEFAULT_OUT, help="output folder (default %(default)s)")
    parser.add_argument("--model", default="default",
                        help="'default' (shipped), a frame-model .safetensors, a sequence bundle or a run folder")
    add_model_options(parser)
    parser.add_argument("--overwrite", action="store_true", help="redo videos whose outputs already exist")
    add_output_options(parser)
    engine = add_engine_options(parser, choices=None)  # any registered engine (affectseq.predict.engines)
    engine.add_argument("--workers", type=int, default=1, metavar="N",
                        help="local engine: predict N videos at once in N processes (default %(default)s)")
    parser.set_defaults(handler=run)


def engine_name(args: argparse.Namespace) -> str:
    """``--engine`` (``local``, ``ray`` or a registered one); ``local`` with ``--workers N>1`` is ``workers``."""
    if args.workers < 1:
        from affectseq.errors import ConfigError

        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if args.engine != "local":
        return args.engine
    return "workers" if args.workers > 1 else "local"


def build_options(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(PredictOptions, OutputOptions)`` from parsed arguments."""
    from affectseq.predict.pipeline import PredictOptions

    options = PredictOptions(**face_settings(args), mode=args.mode, batch_size=args.batch_size,
                             progress=False if args.no_progress else None)
    return options, output_options(args)


def run(args: argparse.Namespace) -> int:
    """Handler: predict every input with the engine the options choose (:func:`engine_name`; the one loop,
    :func:`affectseq.predict.engines.predict_batch`), print one line per video and a final tally; 1 if any
    failed. Every engine writes the same folders and returns the same exit codes."""
    from affectseq.predict.engines import create_engine, predict_batch
    from affectseq.scale.predict_shards import ModelRequest

    options, output = build_options(args)
    name = engine_name(args)
    settings: dict[str, Any] = {"workers": min(args.workers, os.cpu_count() or 1)}
    if name == "ray":
        settings["ray_options"] = ray_options(args)
    model = ModelRequest(args.model, backend=args.backend, device=args.device, smoothing_sec=args.smoothing_sec,
                         tta_flip=args.tta_flip)
    engine = create_engine(name, model, **settings)
    report = predict_batch(args.inputs, args.out, engine, options, output, overwrite=args.overwrite,
                           on_outcome=print_outcome)
    print_batch_files(report)
    print(report.format())
    return report.exit_code


def print_batch_files(report: Any) -> None:
    """Say where the batch-level files are (``clips.csv`` of a clip model)."""
    labels = {"clips": "clip labels"}
    for name, path in report.files.items():
        print(f"{labels.get(name, name)}: {path}")


def print_outcome(outcome: Any) -> None:
    """Print one video's result as the batch goes: its folder and summary, a skip, or a one-line error.

    A note says why a video was redone or written to another folder than its usual one.
    """
    from affectseq.predict.outputs import format_summary
    from affectseq.utils.naming import display_name

    note = f" ({outcome.note})" if getattr(outcome, "note", "") else ""
    if outcome.status == "done":
        say(f"done: {display_name(str(outcome.out_dir))}{note}")
        say(format_summary(outcome.summary))
    elif outcome.status == "skipped":
        say(f"skipped: {outcome.message}{note}")
    else:
        say(f"affectseq: error: {outcome.message}", sys.stderr)


def say(text: str, stream: Any = None) -> None:
    """``print`` that never fails on a console that cannot show some characters of a file name."""
    stream = stream or sys.stdout
    try:
        print(text, file=stream)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        print(text.encode(encoding, "backslashreplace").decode(encoding, "replace"), file=stream)
