"""``affectseq extract``: per-frame features of a whole dataset (any registered layout) into a feature store."""

from __future__ import annotations

import argparse
import os

from affectseq.cli.layout_options import add_layout_options, layout_options
from affectseq.cli.options import add_engine_options, add_face_options, face_settings, ray_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``extract`` subcommand: local (``--workers`` decode processes) or Ray (``--engine ray``)."""
    parser = subparsers.add_parser(
        "extract",
        help="run a trained frame model over every face crop of a dataset -> feature store",
        description="Run a trained frame model over every face crop of an ABAW-layout dataset and write a "
                    "feature store (per-video float16 arrays + labels + manifest). Resumable: re-running skips "
                    "finished videos. Unreadable crops are reported and masked. A dataset of raw videos "
                    "(<name>.mp4 + <name>.csv pairs, or an ABAW tree with videos but no crops) is extracted "
                    "straight from its videos: predict's face stage runs on the fly (no crops written) and the "
                    "store equals extracting from the crops 'affectseq data faces' writes (--engine ray: one Ray task "
                    "per raw video, the same store).",
    )
    parser.add_argument("--data", required=True,
                        help="dataset: an ABAW layout with cropped_aligned crops, or raw videos/clips with labels "
                             "(any layout 'affectseq data inspect' names)")
    parser.add_argument("--checkpoint", required=True,
                        help="frame model: a .safetensors file, a frame training run directory, or 'default'")
    parser.add_argument("--out", required=True, help="feature store directory (created or resumed)")
    parser.add_argument("--batch-size", type=int, default=128, help="crops per encoder batch (default 128)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="JPEG decoding worker processes (default: min(4, CPUs))")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--framing", default="abaw112",
                        help="how the dataset's crops are framed (default abaw112: ABAW cropped_aligned)")
    add_face_options(parser, ("detect_every", "detector"), note="raw videos only (as data faces): ")
    add_layout_options(parser)
    add_engine_options(parser)
    parser.set_defaults(handler=dispatch)


def dispatch(args: argparse.Namespace) -> int:
    """Handler: :func:`run` on ``--engine local``, :func:`run_ray` on ``--engine ray``; same store either way.

    A dataset of raw videos goes to :func:`run_raw_videos` (either engine).
    """
    from affectseq.prepare.face_crops import has_raw_videos_only

    if has_raw_videos_only(args.data, args.layout, **layout_options(args)):
        return run_raw_videos(args)
    return run_ray(args) if args.engine == "ray" else run(args)


def run_raw_videos(args: argparse.Namespace) -> int:
    """``affectseq extract`` on raw videos: faces found on the fly by ``--workers`` processes or Ray tasks."""
    from affectseq.models.factory import load_frame_model
    from affectseq.features.extract import resolve_device
    from affectseq.prepare.video_crops import CropOptions

    crop_options = CropOptions(**face_settings(args))  # checked before the model loads
    ray = args.engine == "ray"
    options = ray_options(args) if ray else None
    model = load_frame_model(args.checkpoint, device="cpu" if ray else resolve_device(args.device))
    common = dict(checkpoint_path=getattr(model, "source_path", None), batch_size=args.batch_size, device=args.device)
    print(f"{args.data}: raw videos, no face crops: running the face stage on the fly "
          f"(--detector {args.detector}, --detect-every {args.detect_every}; no crops written)")
    if options is not None:
        from affectseq.scale.ray_engine import extract_raw_videos_with_ray

        report = extract_raw_videos_with_ray(args.data, model, args.out, crop_options=crop_options, options=options,
                                             **common)
    else:
        from affectseq.prepare.video_features import extract_raw_videos

        report = extract_raw_videos(args.data, model, args.out, options=crop_options, num_workers=args.workers,
                                    layout=args.layout, layout_options=layout_options(args), **common)
    print(f"{args.out}: {report.n_written} videos written, {report.n_skipped} already done "
          f"(of {report.n_videos}); {report.n_frames_encoded} faces encoded in {report.seconds:.1f} s "
          f"({report.frames_per_sec:.0f} frames/s{', ray' if ray else ''})")
    return 0


def run(args: argparse.Namespace) -> int:
    """``affectseq extract`` in this process (with ``--workers`` JPEG decoding processes)."""
    from affectseq.data.registry import open_dataset
    from affectseq.models.factory import load_frame_model
    from affectseq.features.extract import extract_features
    from affectseq.utils.devices import resolve_device

    dataset = open_dataset(args.data, args.layout, **layout_options(args))
    model = load_frame_model(args.checkpoint, device=resolve_device(args.device))
    report = extract_features(
        dataset, model, args.out,
        checkpoint_path=getattr(model, "source_path", None),
        batch_size=args.batch_size, num_workers=args.workers, device=args.device, framing=args.framing,
    )
    print(f"{args.out}: {report.n_written} videos written, {report.n_skipped} already done "
          f"(of {report.n_videos}); {report.n_frames_encoded} frames encoded in {report.seconds:.1f} s "
          f"({report.frames_per_sec:.0f} frames/s); {report.n_corrupt} unreadable crops masked")
    return 0


def run_ray(args: argparse.Namespace) -> int:
    """``affectseq extract --engine ray``: the same store as the local engine, built by Ray tasks."""
    from affectseq.data.registry import open_dataset
    from affectseq.models.factory import load_frame_model
    from affectseq.scale.ray_engine import extract_with_ray

    options = ray_options(args)
    dataset = open_dataset(args.data, args.layout, **layout_options(args))
    model = load_frame_model(args.checkpoint, device="cpu")  # tasks move it to their own --device
    report = extract_with_ray(
        dataset, model, args.out, checkpoint_path=getattr(model, "source_path", None),
        batch_size=args.batch_size, workers_per_task=max(0, int(options.cpus_per_task) - 1), device=args.device,
        framing=args.framing, options=options,
    )
    print(f"{args.out}: {report.n_written} videos written, {report.n_skipped} already done "
          f"(of {report.n_videos}); {report.n_frames_encoded} frames encoded in {report.seconds:.1f} s "
          f"({report.frames_per_sec:.0f} frames/s, ray); {report.n_corrupt} unreadable crops masked")
    return 0
