"""Option groups shared by several commands: small functions each command calls on its own parser.

A command declares every option it has in its own ``register`` (so ``affectseq COMMAND --help``
shows them all); what two commands share lives here once.
"""

from __future__ import annotations

import argparse
from typing import Any

ENGINES: tuple[str, ...] = ("local", "ray")


def add_engine_options(parser: argparse.ArgumentParser) -> Any:
    """Add ``--engine`` and ``--ray-*`` (``extract``, ``predict``, ``data faces``); returns the argument group.

    The caller may add its own engine-related options (``predict --workers``) to the returned group.
    """
    group = parser.add_argument_group("scale-out (affectseq.scale)")
    group.add_argument("--engine", choices=ENGINES, default="local",
                       help="local: this process (and its workers); ray: Ray tasks over videos or video shards, "
                            "on a local Ray instance or the cluster of --ray-address "
                            "(needs pip install 'affectseq[ray]')")
    group.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="existing Ray cluster ('auto', or ray://HOST:10001); default: start a local instance")
    group.add_argument("--ray-cpus-per-task", type=float, default=1.0, metavar="N",
                       help="CPUs per Ray task (extract: N-1 of them decode crops) (default %(default)s)")
    group.add_argument("--ray-gpus-per-task", type=float, default=0.0, metavar="G",
                       help="GPUs per Ray task, e.g. 1 or 0.5 (default %(default)s: CPU only)")
    group.add_argument("--ray-shards", type=int, default=None, metavar="K",
                       help="video shards (default: two per task slot of the cluster)")
    return group


def ray_options(args: argparse.Namespace) -> Any:
    """``RayOptions`` from the options of :func:`add_engine_options`; ConfigError on impossible values."""
    from affectseq.errors import ConfigError
    from affectseq.scale.ray_engine import RayOptions

    if args.ray_cpus_per_task <= 0 or args.ray_gpus_per_task < 0 or (args.ray_shards or 1) < 1:
        raise ConfigError("--ray-cpus-per-task must be > 0, --ray-gpus-per-task >= 0 and --ray-shards >= 1")
    return RayOptions(address=args.ray_address, cpus_per_task=args.ray_cpus_per_task,
                      gpus_per_task=args.ray_gpus_per_task, n_shards=args.ray_shards,
                      log_to_driver=bool(getattr(args, "verbose", False)))
