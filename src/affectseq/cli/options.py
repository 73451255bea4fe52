"""Option groups shared by several commands: small functions each command calls on its own parser.

A command declares every option it has in its own ``register`` (so ``affectseq COMMAND --help``
shows them all); what two commands share lives here once.
"""

from __future__ import annotations

import argparse
from typing import Any

from affectseq.utils.numbers import finite_float

ENGINES: tuple[str, ...] = ("local", "ray")


def add_engine_options(parser: argparse.ArgumentParser, choices: tuple[str, ...] | None = ENGINES) -> Any:
    """Add ``--engine`` and ``--ray-*`` (``extract``, ``predict``, ``data faces``); returns the argument group.

    The caller may add its own engine-related options (``predict --workers``) to the returned group;
    ``choices=None`` leaves the engine name to the command to check (``predict``: any registered engine).
    """
    group = parser.add_argument_group("scale-out (affectseq.scale)")
    group.add_argument("--engine", choices=choices, default="local", metavar=None if choices else "NAME",
                       help="local: this process (and its workers); ray: Ray tasks over videos or video shards, "
                            "on a local Ray instance or the cluster of --ray-address "
                            "(needs pip install 'affectseq[ray]')")
    group.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="existing Ray cluster ('auto', or ray://HOST:10001); default: start a local instance")
    group.add_argument("--ray-cpus-per-task", type=finite_float, default=1.0, metavar="N",
                       help="CPUs per Ray task (extract: N-1 of them decode crops) (default %(default)s)")
    group.add_argument("--ray-gpus-per-task", type=finite_float, default=0.0, metavar="G",
                       help="GPUs per Ray task, e.g. 1 or 0.5 (default %(default)s: CPU only)")
    group.add_argument("--ray-shards", type=int, default=None, metavar="K",
                       help="video shards (default: two per task slot of the cluster)")
    return group


def ray_options(args: argparse.Namespace) -> Any:
    """``RayOptions`` from the options of :func:`add_engine_options`; ConfigError on impossible values."""
    from affectseq.errors import ConfigError
    from affectseq.scale.ray_engine import RayOptions

    for option, value, ok, want in (  # finite_float: no NaN or inf reaches here
            ("--ray-cpus-per-task", args.ray_cpus_per_task, args.ray_cpus_per_task > 0, "> 0"),
            ("--ray-gpus-per-task", args.ray_gpus_per_task, args.ray_gpus_per_task >= 0, ">= 0"),
            ("--ray-shards", args.ray_shards, args.ray_shards is None or args.ray_shards >= 1, ">= 1")):
        if not ok:
            raise ConfigError(f"{option} must be {want}, got {value:g}")
    return RayOptions(address=args.ray_address, cpus_per_task=args.ray_cpus_per_task,
                      gpus_per_task=args.ray_gpus_per_task, n_shards=args.ray_shards,
                      log_to_driver=bool(getattr(args, "verbose", False)))


def add_runtime_options(parser: Any) -> None:
    """Add ``--smoothing-sec``, ``--backend``, ``--device``: how a model runs (``predict``, ``demo``, ``live``)."""
    parser.add_argument("--smoothing-sec", type=finite_float, default=None, metavar="S",
                        help="smoothing window in seconds for frame models (default: the model's, 0 = none)")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                        help="model inference backend; auto: ONNX Runtime (installed with affectseq) on CPU, "
                             "torch on a GPU (default %(default)s)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default %(default)s)")


def add_param_argument(parser: Any, name: str, param: Any, default: Any = None, note: str = "") -> None:
    """One command-line option from a declared setting (``affectseq.utils.params.Param``).

    A boolean that defaults to false is a ``--flag``; one that defaults to true is ``--no-flag``;
    anything else takes a value, parsed and checked by the declaration when the options object is made.
    """
    from affectseq.utils.params import Boolean, Interval, OneOf

    default = param.default if default is None else default
    flag = param.option(name)
    text = note + param.help
    if isinstance(param.constraint, Boolean):
        if default:
            parser.add_argument("--no-" + flag.removeprefix("--"), dest=name, action="store_false",
                                help=f"turn off: {text}")
        else:
            parser.add_argument(flag, dest=name, action="store_true", help=text)
        parser.set_defaults(**{name: bool(default)})
        return
    kwargs: dict[str, Any] = {"dest": name, "default": default, "help": text}
    if isinstance(param.constraint, Interval):
        kwargs.update(type=param.constraint.kind, metavar="K" if param.constraint.kind is int else "X")
    elif isinstance(param.constraint, OneOf) and not callable(param.constraint.names):
        kwargs["choices"] = param.constraint.choices()
    parser.add_argument(flag, **kwargs)


FACE_OPTION_NAMES: tuple[str, ...] = ("detector", "detect_every", "main_face_only")


def add_face_options(parser: Any, names: tuple[str, ...] = FACE_OPTION_NAMES, note: str = "") -> None:
    """Add the face settings ``names`` (``--detector``, ``--detect-every``, ``--main-face-only``) as declared
    once in :mod:`affectseq.faces.settings` (``predict``, ``demo``, ``extract``, ``data faces``, ``live``);
    ``note`` starts each help text (``extract``: raw videos only)."""
    from affectseq.faces.settings import FACE_PARAMS

    for name in names:
        add_param_argument(parser, name, FACE_PARAMS[name], note=note)


def face_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The face settings given on the command line (those the command has), as keyword arguments."""
    return {name: getattr(args, name) for name in FACE_OPTION_NAMES if hasattr(args, name)}


def add_output_options(parser: Any, defaults: dict[str, Any] | None = None) -> None:
    """Add the settings of every registered output writer (``affectseq.predict.writers``): ``--format``,
    ``--no-timeline``, ``--overlay``, ``--keep-audio`` and those of writers registered by plug-ins.

    ``defaults`` changes a default for this command (``demo``: the overlay is on, so it offers ``--no-overlay``).
    """
    from affectseq.predict.writers import output_params

    defaults = defaults or {}
    group = parser.add_argument_group("output files (affectseq.predict.writers)")
    for name, param in output_params().items():
        add_param_argument(group, name, param, default=defaults.get(name))


def output_options(args: argparse.Namespace) -> Any:
    """``OutputOptions`` from the options of :func:`add_output_options`."""
    from affectseq.predict.writers import OutputOptions, output_params

    return OutputOptions(**{name: getattr(args, name) for name in output_params() if hasattr(args, name)})
