"""``affectseq scale ...``: distributed (DDP) training commands.

``affectseq scale train-sequence`` and ``train-frames`` run the options of ``affectseq train sequence`` /
``train frames`` under ``torchrun`` or on ``--nproc N`` local processes. Extraction and prediction on
Ray or several processes are options of those commands themselves (``--engine``, ``--workers``:
:mod:`affectseq.cli.options`, dispatched in :mod:`affectseq.cli.extract` / :mod:`affectseq.cli.predict`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from affectseq.cli.train import add_frame_training_options, frame_config_from_args
from affectseq.cli.train_sequence import (
    add_allow_config_change,
    add_sequence_training_options,
    sequence_config_from_args,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``affectseq scale`` and its subcommands."""
    scale = subparsers.add_parser("scale", help="scale-out tools: distributed (DDP) training",
                                  description="Scale-out tools. Extraction and prediction on Ray: "
                                              "'affectseq extract/predict --engine ray'.")
    sub = scale.add_subparsers(dest="scale_command", metavar="COMMAND", required=True)
    parser = sub.add_parser(
        "train-sequence",
        help="sequence training with PyTorch DDP (torchrun or --nproc N)",
        description="Train a GRU/LSTM on a feature store with distributed data parallel: run it under torchrun "
                    "(torchrun --nproc-per-node 4 -m affectseq scale train-sequence ...) or give --nproc N to "
                    "start N local processes. batch_size is the global batch (split over the ranks); only rank "
                    "0 writes the run directory, which has the same contents as 'affectseq train sequence'.",
    )
    add_sequence_training_options(parser)
    add_allow_config_change(parser)
    _add_ddp_options(parser)
    parser.set_defaults(handler=run_train_ddp)

    frames = sub.add_parser(
        "train-frames",
        help="frame-model training with PyTorch DDP (torchrun or --nproc N)",
        description="Train a frame model like 'affectseq train frames' with distributed data parallel (nccl on "
                    "GPUs, one per rank; gloo on CPU): run it under torchrun (torchrun --nproc-per-node 4 -m affectseq scale "
                    "train-frames ...) or give --nproc N. batch_size is the global batch (split over the ranks; "
                    "same batches and augmentations as one process); only rank 0 writes the run directory.",
    )
    add_frame_training_options(frames)
    add_allow_config_change(frames)
    _add_ddp_options(frames)
    frames.set_defaults(handler=run_train_frames_ddp)


def _add_ddp_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nproc", type=int, default=1,
                        help="local processes to start (ignored under torchrun, which sets the ranks)")
    parser.add_argument("--backend", choices=("auto", "gloo", "nccl"), default="auto",
                        help="process-group backend (auto: nccl with GPUs, else gloo)")


def _run_ranks(args: argparse.Namespace, rank_fn: Callable[..., None], *rank_args: Any) -> int:
    """``rank_fn(ctx, *rank_args)`` as this process's rank under torchrun, or on ``--nproc`` local processes."""
    from affectseq.training import distributed as ddp

    if ddp.env_context().enabled:  # started by torchrun: this process is one rank
        ctx = ddp.init_distributed(args.backend)
        try:
            rank_fn(ctx, *rank_args)
            ddp.barrier(ctx)  # leave together: a peer tearing gloo down while rank 0 still writes can abort it
        finally:
            ddp.cleanup()
    else:
        ddp.launch(rank_fn, args.nproc, *rank_args, backend=args.backend)
    return 0


def _train_rank(ctx: Any, store: str, out: str, config: Any, resume: bool, allow_change: bool,
                command: str) -> None:
    from affectseq.scale.ddp_sequence import train_sequence_distributed

    result = train_sequence_distributed(store, out, config, ctx, resume=resume, command=command,
                                        allow_config_change=allow_change)
    if ctx.is_main:
        print(f"{out}: best epoch {result.best_epoch} of {len(result.history)}, validation score "
              f"{result.best_score:.4f} ({ctx.world_size} ranks) -> {out}/checkpoint_best.safetensors")


def run_train_ddp(args: argparse.Namespace) -> int:
    """``affectseq scale train-sequence``: one rank under torchrun, or ``--nproc`` local ranks."""
    config = sequence_config_from_args(args)
    return _run_ranks(args, _train_rank, args.store, args.out, config, args.resume, args.allow_config_change,
                      " ".join(sys.argv))


def _train_frames_rank(ctx: Any, data: str, out: str, config: Any, resume: bool, allow_change: bool,
                       command: str) -> None:
    from affectseq.scale.ddp_frames import train_frames_distributed

    summary = train_frames_distributed(data, config, out, ctx, resume=resume, command=command,
                                       allow_config_change=allow_change)
    if ctx.is_main:
        test = summary.get("test_metrics") or {}
        print(f"{out}: {summary['stop_reason']}; best epoch {summary['best_epoch']} ({ctx.world_size} ranks)"
              + ("; test " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()) if test else ""))


def run_train_frames_ddp(args: argparse.Namespace) -> int:
    """``affectseq scale train-frames``: the options of ``affectseq train frames`` plus ``--nproc``/``--backend``."""
    config = frame_config_from_args(args)
    return _run_ranks(args, _train_frames_rank, args.data, args.out, config, args.resume, args.allow_config_change,
                      " ".join(sys.argv))
