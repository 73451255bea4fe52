"""``affectseq live SOURCE``: emotions from a camera, a stream or a paced file, as JSON lines while they happen."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import IO, Any

from affectseq.cli.predict import say

LIVE_OPTION_NAMES = ("realtime", "max_seconds", "buffer_frames", "retries")


def register(subparsers: Any) -> None:
    """Add the ``live`` subcommand."""
    from affectseq.cli.options import add_face_options, add_param_argument, add_runtime_options
    from affectseq.predict.live_run import LiveOptions

    parser = subparsers.add_parser(
        "live",
        help="emotions from a camera or a stream as they happen (JSON lines)",
        description="Read a camera (an index: 0), a stream URL (rtsp://, http(s)://, udp://, srt://, ...) or a video "
                    "file and print one JSON line per face per processed frame (frame_idx, time_sec, wall_time, "
                    "face_id, box, det_score, label, prob_<class>..., valence/arousal for VA models). Causal: each "
                    "row uses past frames only, as `predict --mode causal`. When the model falls behind a live "
                    "source, frames are dropped and counted, never queued. Ctrl-C, SIGTERM, the end of the stream "
                    "or --max-seconds end the run with a summary on stderr.",
    )
    parser.add_argument("source", metavar="SOURCE", help="camera index, stream URL or video file")
    parser.add_argument("--model", default="default",
                        help="'default' (shipped), a frame-model .safetensors or a sequence bundle whose temporal "
                             "model is causal")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE.jsonl",
                        help="write the JSON lines to this file instead of stdout")
    parser.add_argument("--csv", type=Path, default=None, metavar="FILE.csv",
                        help="also append every row to this CSV as it comes (frames.csv's columns + wall_time)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out/--csv files that already exist")
    add_face_options(parser)
    for name in LIVE_OPTION_NAMES:
        add_param_argument(parser, name, LiveOptions.PARAMS[name])
    add_runtime_options(parser)
    parser.set_defaults(handler=run)


def _check_output(path: Path | None, overwrite: bool, what: str) -> None:
    """InputError when ``path`` cannot be written as asked; called for every output before any is opened."""
    from affectseq.errors import InputError

    if path is None:
        return
    if path.exists() and not overwrite:
        raise InputError(path, f"{what} exists (use --overwrite to replace it)")
    if not path.parent.is_dir():
        raise InputError(path, "its folder does not exist")


def _open_output(path: Path | None) -> IO[str] | None:
    # Not written atomically on purpose: a live log is read (tail -f) while it grows.
    return None if path is None else path.open("w", encoding="utf-8", newline="")


def _json_value(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def run(args: argparse.Namespace) -> int:
    """Handler: open the source (a one-line error if it cannot be), stream rows, print the summary."""
    from affectseq.cli.options import face_settings
    from affectseq.predict.live_capture import parse_source
    from affectseq.predict.live_run import LiveOptions, LiveRun
    from affectseq.predict.live_session import csv_columns
    from affectseq.predict.model import load_model
    from affectseq.utils.interrupt import sigterm_as_interrupt

    options = LiveOptions(**face_settings(args), **{name: getattr(args, name) for name in LIVE_OPTION_NAMES})
    parse_source(args.source, args.realtime)  # a missing file is one line now, before the model loads
    _check_output(args.out, args.overwrite, "--out file")
    _check_output(args.csv, args.overwrite, "--csv file")
    bundle = load_model(args.model, backend=args.backend, device=args.device, smoothing_sec=args.smoothing_sec)
    run = LiveRun(args.source, bundle, options, on_event=lambda text: say(f"affectseq live: {text}", sys.stderr))
    out = csv_file = None
    try:
        out, csv_file = _open_output(args.out), _open_output(args.csv)
        say(f"affectseq live: {run.source.describe()} with model '{bundle.info.model_id}'"
            f"{f' at {run.capture.fps:.2f} fps' if run.capture.fps else ''}; Ctrl-C stops", sys.stderr)
        lines = out or sys.stdout
        writer = None
        if csv_file is not None:
            writer = csv.writer(csv_file)
            writer.writerow(csv_columns(run.session.classes, run.session.has_va))  # type: ignore[union-attr]
        with sigterm_as_interrupt():
            _stream(run, lines, csv_file, writer)
    finally:
        run.close()
        for handle in (out, csv_file):
            if handle is not None:
                handle.close()
        say(run.stats.format(), sys.stderr)
    return 0


def _stream(run: Any, lines: IO[str], csv_file: IO[str] | None, writer: Any) -> None:
    """Write rows as they come, flushed per frame; Ctrl-C/SIGTERM end the run normally."""
    frame_idx = None
    try:
        for row in run:
            if frame_idx is not None and row["frame_idx"] != frame_idx:
                _flush(lines, csv_file)
            frame_idx = row["frame_idx"]
            lines.write(json.dumps({k: _json_value(v) for k, v in row.items()}) + "\n")
            if writer is not None:
                writer.writerow(_csv_values(row, row["box"] or [None] * 4))
        _flush(lines, csv_file)
    except KeyboardInterrupt:
        _flush(lines, csv_file)
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: the run is over; stdout must not complain at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _csv_values(row: dict[str, Any], box: list[Any]) -> list[Any]:
    values: list[Any] = []
    for key, value in row.items():
        values.extend(box if key == "box" else [value])
    return ["" if v is None else v for v in values]


def _flush(*handles: IO[str] | None) -> None:
    for handle in handles:
        if handle is not None:
            handle.flush()
