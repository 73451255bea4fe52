"""``affectseq train sequence``: a GRU/LSTM on a feature store (registered by ``affectseq.cli.train``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(train_subparsers: argparse._SubParsersAction) -> None:
    """Add ``sequence`` to the ``affectseq train`` subcommands."""
    parser = train_subparsers.add_parser(
        "sequence",
        help="train a temporal model (GRU, LSTM, TCN, transformer...) on a feature store",
        description="Train a temporal model on windows of stored frame features, with early stopping on the "
                    "validation metric. Options come from the typed config (defaults: the paper's GRU "
                    "100-100-50 on 100-frame windows, sequence-to-one; on a clip store, one label per clip "
                    "from 16 frames sampled over it, see docs/clips.md); change them with --config YAML "
                    "and/or key=value overrides, e.g. mode=seq2seq model.arch=lstm model.hidden_sizes=[128,64], "
                    "model.arch=tcn model.channels=[64,64,64] model.kernel_size=3, or model.arch=transformer "
                    "model.d_model=64 model.layers=2 model.causal=false. Architectures: gru, lstm, tcn, "
                    "transformer, and any registered by a plug-in (docs/architecture.md).",
    )
    add_sequence_training_options(parser)
    add_allow_config_change(parser)
    parser.set_defaults(handler=run)


def add_sequence_training_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``train sequence`` (also those of ``scale train-sequence``)."""
    parser.add_argument("--store", required=True, help="feature store directory (from affectseq extract)")
    parser.add_argument("--task", choices=("expr", "va", "multi"), default=None,
                        help="what to train (default from the config: expr)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--config", default=None, help="YAML file with SequenceTrainConfig options")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from checkpoint_last.pt")
    parser.add_argument("--seed", type=int, default=None, help="random seed (overrides the config)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or auto (overrides the config; under DDP each rank takes cuda:LOCAL_RANK)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def add_allow_config_change(parser: argparse.ArgumentParser) -> None:
    """``--allow-config-change`` of ``train frames`` and ``train sequence`` (the one engine's resume rule)."""
    parser.add_argument("--allow-config-change", action="store_true",
                        help="with --resume: continue even though options other than epochs/max_minutes/threads/"
                             "device changed since the run started (refused otherwise)")


def sequence_config_from_args(args: argparse.Namespace) -> Any:
    """The ``SequenceTrainConfig`` of those options: ``--config`` plus ``--task/--seed/--device`` and overrides.

    On ``--resume`` the run's own config.yaml is the base; overrides may extend it.
    """
    from affectseq.config import load_config
    from affectseq.training.fit import run_config_source
    from affectseq.training.sequence import SequenceTrainConfig

    overrides = list(args.overrides)
    for key, value in (("task", args.task), ("seed", args.seed), ("device", args.device)):
        if value is not None:
            overrides.append(f"{key}={value}")
    return load_config(SequenceTrainConfig, run_config_source(args.config, args.out, args.resume), overrides)


def run(args: argparse.Namespace) -> int:
    from affectseq.training.sequence import train_sequence

    config = sequence_config_from_args(args)
    result = train_sequence(args.store, args.out, config, resume=args.resume, command=" ".join(sys.argv),
                            allow_config_change=args.allow_config_change)
    print(f"{args.out}: best epoch {result.best_epoch} of {len(result.history)}, "
          f"validation score {result.best_score:.4f} -> {args.out}/checkpoint_best.safetensors")
    return 0
