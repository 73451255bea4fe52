"""Scale-out options and commands: ``--engine local|ray`` for ``extract``/``predict``, ``affectseq scale ...``.

* :func:`register` adds ``affectseq scale train-sequence`` and ``train-frames`` (DDP: under
  ``torchrun`` or with ``--nproc N``) and, when ``extract``/``predict`` are already registered (this module
  comes after them in ``COMMAND_MODULES``) and lack the options, gives them ``--engine``,
  ``--ray-*`` (and ``predict --workers N``) by :func:`add_engine_options` + :func:`with_engine`;
* :func:`with_engine` wraps a command's local handler: ``--engine local`` runs it unchanged,
  ``--engine ray`` runs :mod:`affectseq.scale.ray_engine`, ``predict --workers N>1`` the local
  multi-process engine of :mod:`affectseq.scale.predict_shards`.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import Any, Callable

from affectseq.cli.train import add_frame_training_options, frame_config_from_args
from affectseq.cli.train_sequence import add_sequence_training_options, sequence_config_from_args

Handler = Callable[[argparse.Namespace], int]
ENGINE_COMMANDS: tuple[str, ...] = ("extract", "predict")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``affectseq scale`` and the engine options of the already registered ``extract``/``predict``."""
    for command in ENGINE_COMMANDS:
        parser = subparsers.choices.get(command)
        if parser is None or any("--engine" in a.option_strings for a in parser._actions):
            continue  # not registered yet, or the command has its own engine options
        add_engine_options(parser, command)
        parser.set_defaults(handler=with_engine(command, parser.get_default("handler")))

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


def _train_rank(ctx: Any, store: str, out: str, config: Any, resume: bool, command: str) -> None:
    from affectseq.scale.ddp_sequence import train_sequence_distributed

    result = train_sequence_distributed(store, out, config, ctx, resume=resume, command=command)
    if ctx.is_main:
        print(f"{out}: best epoch {result.best_epoch} of {len(result.history)}, validation score "
              f"{result.best_score:.4f} ({ctx.world_size} ranks) -> {out}/checkpoint_best.safetensors")


def run_train_ddp(args: argparse.Namespace) -> int:
    """``affectseq scale train-sequence``: one rank under torchrun, or ``--nproc`` local ranks."""
    config = sequence_config_from_args(args)
    return _run_ranks(args, _train_rank, args.store, args.out, config, args.resume, " ".join(sys.argv))


def _train_frames_rank(ctx: Any, data: str, out: str, config: Any, resume: bool, command: str) -> None:
    from affectseq.scale.ddp_frames import train_frames_distributed

    summary = train_frames_distributed(data, config, out, ctx, resume=resume, command=command)
    if ctx.is_main:
        test = summary.get("test_metrics") or {}
        print(f"{out}: {summary['stop_reason']}; best epoch {summary['best_epoch']} ({ctx.world_size} ranks)"
              + ("; test " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()) if test else ""))


def run_train_frames_ddp(args: argparse.Namespace) -> int:
    """``affectseq scale train-frames``: the options of ``affectseq train frames`` plus ``--nproc``/``--backend``."""
    config = frame_config_from_args(args)
    return _run_ranks(args, _train_frames_rank, args.data, args.out, config, args.resume, " ".join(sys.argv))


def add_engine_options(parser: argparse.ArgumentParser, command: str) -> None:
    """Add ``--engine``, ``--ray-*`` (and for ``predict`` ``--workers``) to ``command``'s parser."""
    group = parser.add_argument_group("scale-out (affectseq.scale)")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: this process (and its workers); ray: Ray tasks over video shards, on a local "
                            "Ray instance or the cluster of --ray-address (needs pip install 'affectseq[ray]')")
    group.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="existing Ray cluster ('auto', or ray://HOST:10001); default: start a local instance")
    group.add_argument("--ray-cpus-per-task", type=float, default=1.0, metavar="N",
                       help="CPUs per Ray task (extract: N-1 of them decode crops) (default %(default)s)")
    group.add_argument("--ray-gpus-per-task", type=float, default=0.0, metavar="G",
                       help="GPUs per Ray task, e.g. 1 or 0.5 (default %(default)s: CPU only)")
    group.add_argument("--ray-shards", type=int, default=None, metavar="K",
                       help="video shards (default: two per task slot of the cluster)")
    if command == "predict" and not any("--workers" in a.option_strings for a in parser._actions):
        group.add_argument("--workers", type=int, default=1, metavar="N",
                           help="local engine: predict N videos at once in N processes (default %(default)s)")


def with_engine(command: str, local_handler: Handler) -> Handler:
    """``local_handler`` for ``--engine local``, the Ray (or multi-process) path otherwise."""
    remote = {"extract": run_extract_ray, "predict": run_predict_scaled}[command]

    @functools.wraps(local_handler)
    def handler(args: argparse.Namespace) -> int:
        if getattr(args, "engine", "local") == "ray" or (command == "predict" and getattr(args, "workers", 1) > 1):
            return remote(args)
        return local_handler(args)

    return handler


def ray_options(args: argparse.Namespace) -> Any:
    """``RayOptions`` from the parsed ``--ray-*`` options."""
    from affectseq.errors import ConfigError
    from affectseq.scale.ray_engine import RayOptions

    if args.ray_cpus_per_task <= 0 or args.ray_gpus_per_task < 0 or (args.ray_shards or 1) < 1:
        raise ConfigError("--ray-cpus-per-task must be > 0, --ray-gpus-per-task >= 0 and --ray-shards >= 1")
    return RayOptions(address=args.ray_address, cpus_per_task=args.ray_cpus_per_task,
                      gpus_per_task=args.ray_gpus_per_task, n_shards=args.ray_shards,
                      log_to_driver=bool(getattr(args, "verbose", False)))


def run_extract_ray(args: argparse.Namespace) -> int:
    """``affectseq extract --engine ray``: the same store as the local engine, built by Ray tasks."""
    from affectseq.data.abaw import AbawDataset
    from affectseq.features.checkpoint import load_frame_model
    from affectseq.scale.ray_engine import extract_with_ray

    options = ray_options(args)
    dataset = AbawDataset(args.data)
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


def run_predict_scaled(args: argparse.Namespace) -> int:
    """``affectseq predict`` with ``--engine ray`` or ``--workers N``: the same folders as the local engine."""
    from affectseq.cli.predict import build_options, print_outcome
    from affectseq.scale.predict_shards import ModelRequest

    options, output = build_options(args)
    model = ModelRequest(args.model, backend=args.backend, device=args.device, smoothing_sec=args.smoothing_sec)
    model.load()  # fail fast on a bad --model, before any worker starts

    if args.engine == "ray":
        from affectseq.scale.ray_engine import predict_with_ray

        report = predict_with_ray(args.inputs, args.out, model, options, output, overwrite=args.overwrite,
                                  ray_options=ray_options(args), on_outcome=print_outcome)
    else:
        from affectseq.scale.predict_shards import predict_parallel

        workers = min(args.workers, os.cpu_count() or 1)
        report = predict_parallel(args.inputs, args.out, model, options, output, workers=workers,
                                  overwrite=args.overwrite, on_outcome=print_outcome)
    print(report.format())
    return report.exit_code
