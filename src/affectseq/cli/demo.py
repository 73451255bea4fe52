"""``affectseq demo``: the default model on the bundled sample clip, every output including the overlay."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_DEMO_OUT = "affectseq_demo"


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    from affectseq.cli.options import add_output_options
    from affectseq.cli.predict import add_model_options

    parser = subparsers.add_parser(
        "demo",
        help="run predict on the bundled sample clip and show where the results are",
        description="Predict with the shipped default model on the bundled sample video "
                    "(Video by Wolfgang Langer, Pexels), writing frames.csv, summary.json, timeline.png "
                    "and an annotated overlay.mp4.",
    )
    parser.add_argument("--out", "-o", default=DEFAULT_DEMO_OUT, help="output folder (default ./%(default)s)")
    parser.add_argument("--model", default="default", help="model to demo (default: the shipped one)")
    add_model_options(parser)
    add_output_options(parser, defaults={"overlay": True})  # --no-overlay: skip the annotated video (faster)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: predict the sample (always fresh) through the one predict loop, then print the output paths
    and a summary. Like ``predict``, it holds the output folder's lock and replaces only a folder it wrote
    for the sample; a failure is one line and exit status 1."""
    from affectseq.cli.predict import build_options, say
    from affectseq.errors import AffectseqError
    from affectseq.predict.engines import LocalEngine, predict_batch
    from affectseq.predict.model import load_model
    from affectseq.predict.outputs import format_summary
    from affectseq.predict.sample import SAMPLE_ATTRIBUTION, sample_video_path

    video = sample_video_path()
    options, output = build_options(args)
    say(f"affectseq demo: {video.name} ({SAMPLE_ATTRIBUTION}) with model '{args.model}'")
    bundle = load_model(args.model, backend=args.backend, device=args.device, smoothing_sec=args.smoothing_sec,
                        tta_flip=args.tta_flip)
    (outcome,) = predict_batch([video], Path(args.out), LocalEngine(bundle), options, output, overwrite=True).outcomes
    if outcome.status == "failed":
        raise AffectseqError(outcome.message)
    if outcome.note:
        say(f"note: {outcome.note}")
    say(f"results in {outcome.out_dir.resolve()}/")
    for name in sorted(p.name for p in outcome.out_dir.iterdir()):
        say(f"  {name}")
    say(format_summary(outcome.summary or {}))
    return 0
