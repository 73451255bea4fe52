"""``affectseq serve``: the local web app -- upload a video in the browser, watch it beside its emotion timeline."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

from affectseq.utils.numbers import finite_float

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def default_data_dir() -> Path:
    """A per-user folder for the server's jobs (the platform's usual place for app data)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "affectseq" / "serve"


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="local web app: upload a video, watch it with its emotion timeline",
        description="Start a local web server: open the printed URL, drop a video, watch it play beside its "
                    "expression timeline. Also an HTTP API (documented at /docs). Needs the serve extra: "
                    "pip install 'affectseq[serve]'.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to bind (default %(default)s: this computer only; there is no login)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s; 0: any free)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"where jobs are stored (default {default_data_dir()})")
    parser.add_argument("--model", default="default",
                        help="'default' (shipped), a frame-model .safetensors, a sequence bundle or a run folder")
    parser.add_argument("--max-upload-mb", type=finite_float, default=2048, help="largest upload (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="videos analysed at the same time; more wait in a queue (default %(default)s)")
    parser.add_argument("--live-sessions", type=int, default=4, metavar="N",
                        help="camera tabs the /live page serves at once; more get a 'busy' message "
                             "(default %(default)s)")
    parser.set_defaults(handler=run)


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the URL is printed (so port 0 and a taken port both tell the truth)."""
    from affectseq.errors import ConfigError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None
    sock.listen(128)
    return sock


def run(args: argparse.Namespace) -> int:
    """Handler: load the model (errors show now, not on the first upload), bind, print the URL, serve."""
    from affectseq.errors import ConfigError

    try:
        import uvicorn

        from affectseq.serve.app import ServeConfig, create_app
        from affectseq.serve.runner import PredictRunner
    except ModuleNotFoundError as err:
        raise ConfigError(f"affectseq serve needs the serve extra ({err.name} is missing): "
                          "pip install 'affectseq[serve]'") from None
    for option, value, ok, want in (
            ("--jobs", args.jobs, args.jobs >= 1, "a positive integer"),
            ("--live-sessions", args.live_sessions, args.live_sessions >= 1, "a positive integer"),
            ("--max-upload-mb", args.max_upload_mb, 0 < args.max_upload_mb < 2**43,
             "a positive number of MB below 2^43")):
        if not ok:
            raise ConfigError(f"{option} must be {want}, got {value:g}")
    data_dir = (args.data_dir or default_data_dir()).expanduser().resolve()
    runner = PredictRunner(args.model)
    runner.bundle(None)  # a bad --model is a one-line error here
    loopback = args.host in LOOPBACK_NAMES
    config = ServeConfig(data_dir=data_dir, max_upload_bytes=int(args.max_upload_mb * 2**20), jobs=args.jobs,
                         model=args.model, allowed_hosts=LOOPBACK_NAMES if loopback else None,
                         max_live_sessions=args.live_sessions)
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    if not loopback:
        print(f"affectseq serve: WARNING: listening on {args.host}, reachable from other machines, and there is "
              "no authentication: anyone who can reach this port can upload videos and read every result",
              file=sys.stderr)
        shown = "localhost" if args.host in ("0.0.0.0", "::") else shown
    print(f"affectseq serve: open http://{shown}:{port}/ (API docs at /docs; jobs in {data_dir}; "
          f"model '{args.model}'; Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(config, runner), log_level="warning", access_log=False))
    server.run(sockets=[sock])
    return 0
