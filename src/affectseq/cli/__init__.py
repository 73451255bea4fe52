"""The ``affectseq`` command line: thin wiring of the stages, one module per command group.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)`` which adds
its subcommands, declares every option they take (shared groups come from
:mod:`affectseq.cli.options`) and sets ``handler`` (a function ``args -> int`` exit
code) on them; no module edits another's parser. Heavy imports (torch, av) happen
inside handlers so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from affectseq import __version__
from affectseq.errors import AffectseqError

# Explicit registry of command modules (no import side effects elsewhere); each
# owns one group of subcommands. Order is the order shown in ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "affectseq.cli.demo",
    "affectseq.cli.predict",
    "affectseq.cli.live",
    "affectseq.cli.serve",
    "affectseq.cli.data",
    "affectseq.cli.train",
    "affectseq.cli.extract",
    "affectseq.cli.evaluate",
    "affectseq.cli.experiment",
    "affectseq.cli.scale",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="affectseq",
        description="Emotion recognition on video: face frames -> CNN features -> recurrent temporal model.",
    )
    parser.add_argument("--version", action="version", version=f"affectseq {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)  # a missing module is a bug: let it raise
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``affectseq`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except AffectseqError as err:
        print(f"affectseq: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("affectseq: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
