"""``affectseq train``: ``train frames`` (stage 1) here; ``train sequence`` comes from ``cli.train_sequence``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from affectseq.cli.layout_options import add_layout_options, layout_options
from affectseq.cli.train_sequence import add_allow_config_change, register as register_sequence


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` group and its subcommands."""
    parser = subparsers.add_parser("train", help="train frame CNNs and temporal models")
    train_sub = parser.add_subparsers(dest="train_command", metavar="STAGE")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    frames = train_sub.add_parser(
        "frames", help="train a frame encoder + heads on face images (EXPR, VA or multi-task)",
        description="Train a frame model on a FER2013 .npz, a class-per-folder image tree or an ABAW root. "
                    "Settings: --config YAML and key=value overrides (e.g. epochs=5 encoder.name=resnet18).")
    add_frame_training_options(frames)
    add_layout_options(frames)  # raw videos and clips are cropped first (train frames only, not scale)
    add_allow_config_change(frames)
    frames.set_defaults(handler=_train_frames)

    register_sequence(train_sub)  # ``train sequence`` lives in its own module (cli.train_sequence)


def add_frame_training_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``train frames`` (also those of ``scale train-frames``)."""
    parser.add_argument("--data", required=True, help="dataset path (FER2013 .npz, image tree, ABAW root, "
                                                        "videos or clips with labels: any layout data inspect names)")
    parser.add_argument("--task", choices=("expr", "va", "multi"), default=None, help="task (default: config's)")
    parser.add_argument("--encoder", default=None, help="encoder name: paper_cnn, torchvision/<arch> or a timm model")
    parser.add_argument("--init-weights", default=None, help="local state-dict file to initialise the encoder")
    parser.add_argument("--config", default=None, help="YAML config (FrameTrainConfig fields)")
    parser.add_argument("--out", required=True, help="run directory to create")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoint_last.pt")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")


def frame_config_from_args(args: argparse.Namespace) -> Any:
    """The ``FrameTrainConfig`` of ``train frames``-style options (also used by ``scale train-frames``).

    On ``--resume`` the run's own resolved config.yaml is the base; overrides may extend it.
    """
    from affectseq.config import load_config
    from affectseq.training.fit import run_config_source
    from affectseq.training.frames import FrameTrainConfig

    overrides = list(args.overrides)
    for key, value in (("task", args.task), ("encoder.name", args.encoder),
                       ("encoder.init_weights", args.init_weights)):
        if value:
            overrides.append(f"{key}={value}")
    return load_config(FrameTrainConfig, run_config_source(args.config, args.out, args.resume), overrides)


def _train_frames(args: argparse.Namespace) -> int:
    from affectseq.prepare.face_crops import crops_for_training
    from affectseq.training.frames import train_frames

    config = frame_config_from_args(args)
    run_dir = Path(args.out)
    command = "affectseq " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    # Raw videos or clips: their face crops, made or reused (layout options pick e.g. DFEW's fold).
    data, face_stage = crops_for_training(args.data, layout=args.layout, layout_options=layout_options(args))
    if face_stage:
        print(face_stage)
    summary = train_frames(data, run_dir, config, resume=args.resume, command=command,
                           allow_config_change=args.allow_config_change)
    test = summary.get("test_metrics") or {}
    print(f"{run_dir}: {summary['stop_reason']}; best epoch {summary['best_epoch']}"
          + ("; test " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()) if test else ""))
    return 0
