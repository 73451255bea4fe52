"""``affectseq train``: ``train frames`` (stage 1) here; ``train sequence`` comes from ``cli.train_sequence``."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import shlex
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` group and its subcommands."""
    parser = subparsers.add_parser("train", help="train frame CNNs and temporal models")
    train_sub = parser.add_subparsers(dest="train_command", metavar="STAGE")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    frames = train_sub.add_parser(
        "frames", help="train a frame encoder + heads on face images (EXPR, VA or multi-task)",
        description="Train a frame model on a FER2013 .npz, a class-per-folder image tree or an ABAW root. "
                    "Settings: --config YAML and key=value overrides (e.g. epochs=5 encoder.name=resnet18).")
    frames.add_argument("--data", required=True, help="dataset path")
    frames.add_argument("--task", choices=("expr", "va", "multi"), default=None, help="task (default: config's)")
    frames.add_argument("--encoder", default=None, help="encoder name: paper_cnn, torchvision/<arch> or a timm model")
    frames.add_argument("--init-weights", default=None, help="local state-dict file to initialise the encoder")
    frames.add_argument("--config", default=None, help="YAML config (FrameTrainConfig fields)")
    frames.add_argument("--out", required=True, help="run directory to create")
    frames.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoint_last.pt")
    frames.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    frames.set_defaults(handler=_train_frames)

    # The sequence stage's command lives in its owner's module; it may not exist yet.
    if importlib.util.find_spec("affectseq.cli.train_sequence") is not None:
        importlib.import_module("affectseq.cli.train_sequence").register(train_sub)


def _train_frames(args: argparse.Namespace) -> int:
    from affectseq.config import load_config
    from affectseq.training.frames import FrameTrainConfig, train_frames

    overrides = list(args.overrides)
    if args.task:
        overrides.append(f"task={args.task}")
    if args.encoder:
        overrides.append(f"encoder.name={args.encoder}")
    if args.init_weights:
        overrides.append(f"encoder.init_weights={args.init_weights}")
    config_path = args.config
    run_dir = Path(args.out)
    if args.resume and (run_dir / "config.yaml").exists():
        config_path = run_dir / "config.yaml"  # the run's own resolved settings; overrides may extend them
    config = load_config(FrameTrainConfig, config_path, overrides)
    command = "affectseq " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    summary = train_frames(args.data, config, run_dir, resume=args.resume, command=command)
    test = summary.get("test_metrics") or {}
    print(f"{run_dir}: {summary['stop_reason']}; best epoch {summary['best_epoch']}"
          + ("; test " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()) if test else ""))
    return 0
