"""``affectseq data faces DATASET --out DIR``: face crops of a dataset's raw videos, as an ABAW tree.

Registered under the ``data`` group by :mod:`affectseq.cli.data`; the work is done by
:func:`affectseq.prepare.face_crops.export_face_crops`, in this process, ``--workers``
processes or (``--engine ray``) one Ray task per video.
"""

from __future__ import annotations

import argparse

from affectseq.cli.layout_options import add_layout_options, layout_options
from affectseq.cli.options import add_engine_options, add_face_options, face_settings, ray_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``faces`` subcommand to the ``data`` group's subparsers."""
    parser = subparsers.add_parser(
        "faces",
        help="detect, track and align the faces of a dataset's videos into an ABAW tree (cropped_aligned + labels)",
        description="Run predict's face stage (detector, tracker, alignment) over the raw videos of a dataset "
                    "with labels but no face crops -- videos with per-frame CSVs (<name>.mp4 + <name>.csv) or an "
                    "Aff-Wild2/ABAW tree with raw videos, or labelled clips (class folders, a clip list, DFEW, "
                    "...) -- and write DIR/cropped_aligned/<video>/<n:05d>.jpg "
                    "plus ABAW annotation files, so that data inspect, train frames, extract and experiment "
                    "paper read DIR. The annotated person is the main face; ABAW's _left/_right videos take "
                    "the faces of that half of the frame; a CSV face_id column names the face per frame. "
                    "Rerunning resumes (finished videos are skipped); a failing video is reported and the "
                    "others go on (exit 1 at the end). --engine ray runs one Ray task per video (same outputs; "
                    "--workers and --ray-shards do not apply).",
    )
    parser.add_argument("dataset", metavar="DATASET",
                        help="video+CSV folder, clip dataset (class folders, clip list, DFEW...) or ABAW tree "
                             "with raw videos")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created; resumed if present)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes cropping videos in parallel (default %(default)s)")
    add_face_options(parser, ("detect_every", "detector"))
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_layout_options(parser)
    add_engine_options(parser)
    parser.set_defaults(handler=_faces)


def _faces(args: argparse.Namespace) -> int:
    from affectseq.errors import ConfigError
    from affectseq.prepare.face_crops import export_face_crops
    from affectseq.prepare.video_crops import CropOptions

    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    options = CropOptions(**face_settings(args))
    runner = None
    if args.engine == "ray":
        from affectseq.scale.ray_engine import crop_with_ray

        runner = crop_with_ray(ray_options(args))
    report = export_face_crops(args.dataset, args.out, options, workers=args.workers,
                               progress=False if args.no_progress else None, runner=runner, layout=args.layout,
                               layout_options=layout_options(args))
    _print_report(report)
    return report.exit_code


def _print_report(report) -> None:
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{report.out}[/bold] ({report.layout} input): {report.written} videos cropped "
                  f"({report.crops:,} crops), {report.skipped} finished earlier, {len(report.failures)} failed")
    for note in report.notes:
        console.print(f"  note: {note}", markup=False, highlight=False, soft_wrap=True)
    for failure in report.failures:
        console.print(f"  failed: {failure}", markup=False, highlight=False, soft_wrap=True, style="red")
    if not report.failures:
        console.print(f"inspect with: affectseq data inspect {report.out}", markup=False)
