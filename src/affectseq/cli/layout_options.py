"""How a dataset path is read, declared once for every command that takes one: ``--layout``, ``--fold``, ``--fps``.

The options are the layout registry's (:mod:`affectseq.data.registry`): ``--layout`` forces a registered
layout instead of detecting it; ``--fold`` and ``--fps`` go to the layouts that take them (a layout that
does not is a ConfigError naming its own options).
"""

from __future__ import annotations

import argparse


def add_layout_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--layout``, ``--fold``, ``--fps`` to a command that takes a dataset."""
    parser.add_argument("--layout", default=None, metavar="NAME",
                        help="read the dataset as this registered layout instead of detecting it "
                             "(see 'affectseq data inspect --list-layouts')")
    parser.add_argument("--fold", type=int, default=None, metavar="N",
                        help="benchmarks with folds (DFEW, MAFW): which fold's train/test split (default 1)")
    parser.add_argument("--fps", type=float, default=None, metavar="RATE",
                        help="frame rate of clips stored as folders of frame images (no rate is known for them)")


def layout_options(args: argparse.Namespace) -> dict[str, object]:
    """The layout options given on the command line (``fold``, ``fps``), as ``open_dataset`` takes them."""
    return {k: getattr(args, k, None) for k in ("fold", "fps") if getattr(args, k, None) is not None}
