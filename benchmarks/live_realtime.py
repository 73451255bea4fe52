"""Can ``affectseq live`` keep up with a camera? Frames processed / offered on paced files, with latency.

For each source, interleaved in rounds (so a change in machine load hits every source alike):

  (a) ``live --realtime`` (a file released at its own frame rate, as a camera; frames the model
      cannot take in time are dropped): frames offered, processed, dropped, the ratio
      processed/offered and the capture -> row latency median and p95;
  (a') with ``--inline``: the same with full detections on the consuming thread (the first
      version, before they were planned one frame ahead in a second thread): the baseline;
  (b) the same file without ``--realtime`` (every frame, as fast as it goes): the machine's
      capacity in frames/s, and capacity / source fps (the headroom, >1 means it can keep up).

Sources: the 24-fps sample clip (examples/sample.mp4, 640x360, 472 frames) and the same frames
re-timed to 30 fps (written with PyAV into a temp dir: a 30-fps 640x360 source, 15.7 s).
Default settings (the shipped model, ``detect_every`` 8, a buffer of 8 frames) unless given.

    python benchmarks/live_realtime.py                 # 2 rounds
    python benchmarks/live_realtime.py --rounds 3 --inline     # planned-ahead vs inline, interleaved
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample.mp4"


def retime(src: Path, dst: Path, fps: int) -> Path:
    """Every frame of ``src`` re-encoded (H.264, same size) at ``fps``: the same pictures, another clock."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream_in = inp.streams.video[0]
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        for i, frame in enumerate(inp.decode(stream_in)):
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)  # frame i at i / fps seconds
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return dst


def inline_run_class():
    """LiveRun with detections inline on the consuming thread (the first version): the baseline of ``--inline``."""
    import time

    from affectseq.predict.live_run import LiveRun

    class InlineLiveRun(LiveRun):
        def _generate(self):
            session, stats = self.session, self.session.stats
            deadline = None if self.options.max_seconds is None else stats.started_at + self.options.max_seconds
            try:
                for frame in self.capture.frames(until=deadline):
                    yield from session.process(frame)
            finally:
                self.capture.stop()
                self.stats  # noqa: B018
                stats.ended_at = time.monotonic()

    return InlineLiveRun


def run_once(source: Path, bundle, realtime: bool, detect_every: int, buffer_frames: int, inline: bool = False) -> dict:
    from affectseq.predict.live_run import LiveOptions, LiveRun

    options = LiveOptions(realtime=realtime, detect_every=detect_every, buffer_frames=buffer_frames)
    with (inline_run_class() if inline else LiveRun)(source, bundle, options) as run:
        for _ in run:
            pass
    return {**run.stats.to_dict(), "fps": run.capture.fps}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--detect-every", type=int, default=8)
    parser.add_argument("--buffer-frames", type=int, default=8)
    parser.add_argument("--model", default="default")
    parser.add_argument("--inline", action="store_true",
                        help="also run live --realtime with detections inline (the baseline), interleaved")
    args = parser.parse_args()

    from affectseq.predict.model import load_model

    bundle = load_model(args.model)
    print(f"model {bundle.info.model_id} ({bundle.info.extra.get('backend')}), detect_every {args.detect_every}, "
          f"buffer {args.buffer_frames} frames, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"sample 24 fps": SAMPLE, "sample re-timed 30 fps": retime(SAMPLE, Path(tmp) / "s30.mp4", 30)}
        kinds = ("realtime", "inline", "capacity") if args.inline else ("realtime", "capacity")
        results: dict[str, dict[str, list[dict]]] = {name: {kind: [] for kind in kinds} for name in sources}
        for round_idx in range(args.rounds):
            for name, path in sources.items():
                for kind in kinds:
                    r = run_once(path, bundle, kind != "capacity", args.detect_every, args.buffer_frames,
                                 inline=kind == "inline")
                    results[name][kind].append(r)
                    print(f"round {round_idx + 1} {name:24s} {kind:9s} offered {r['frames_offered']:4d} processed "
                          f"{r['frames_processed']:4d} dropped {r['frames_dropped']:4d} ({r['processed_fps']:.1f} "
                          f"fps) latency median {r['latency_ms_median']:.0f} ms p95 {r['latency_ms_p95']:.0f} ms",
                          flush=True)
    print("\nsummary (median over rounds):")
    for name, by_kind in results.items():
        real, cap = by_kind["realtime"], by_kind["capacity"]
        fraction = statistics.median(r["frames_processed"] / r["frames_offered"] for r in real)
        capacity = statistics.median(r["processed_fps"] for r in cap)
        print(f"  {name}: live --realtime processed/offered {fraction:.3f} "
              f"(dropped {statistics.median(r['frames_dropped'] for r in real):.0f} of {real[0]['frames_offered']}); "
              f"latency median {statistics.median(r['latency_ms_median'] for r in real):.0f} ms, "
              f"p95 {statistics.median(r['latency_ms_p95'] for r in real):.0f} ms; capacity {capacity:.1f} fps = "
              f"{capacity / real[0]['fps']:.2f}x the source's {real[0]['fps']:.2f} fps")
        if args.inline:
            base = statistics.median(r["frames_processed"] / r["frames_offered"] for r in by_kind["inline"])
            print(f"    baseline (detections inline, the first version): processed/offered {base:.3f}; "
                  f"latency median {statistics.median(r['latency_ms_median'] for r in by_kind['inline']):.0f} ms, "
                  f"p95 {statistics.median(r['latency_ms_p95'] for r in by_kind['inline']):.0f} ms; "
                  f"ratio planned-ahead / inline {fraction / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
