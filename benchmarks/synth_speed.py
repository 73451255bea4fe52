"""Speed of ``affectseq data synth``: the issue's target is a 20-video x 300-frame set in well under a minute on 2 cores.

Generates the set into a temporary folder with the default config and prints wall time,
CPU seconds (this process and its worker processes), frames per wall second and per CPU
second, the share of the wall time the workers kept the cores busy, and the 1-minute load
average (the dev box is shared; a busy machine shows up as CPU/wall well below the worker count).

    python benchmarks/synth_speed.py                     # 20 x 300, 2 workers
    python benchmarks/synth_speed.py --videos 4 --frames 100 --workers 1
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time


def _cpu_sec() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # pool workers, counted once they exit
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from affectseq.data.synth import SynthConfig, generate

    config = SynthConfig(n_videos=args.videos, n_frames=args.frames, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, wall0 = _cpu_sec(), time.perf_counter()
        summary = generate(os.path.join(tmp, "synth"), config, workers=args.workers, show_progress=False)
        wall, cpu = time.perf_counter() - wall0, _cpu_sec() - cpu0
        size_mb = sum(f.stat().st_size for f in __import__("pathlib").Path(tmp).rglob("*") if f.is_file()) / 2**20
    face_frames = summary.frames  # one per annotated person and frame (two-person videos count twice)
    print(f"set: {summary.raw_videos} raw videos x {args.frames} frames, {summary.annotated_videos} annotated, "
          f"{face_frames} person-frames, {summary.frames_with_crop} crops, {size_mb:.1f} MiB")
    print(f"workers: {summary.workers}   load average (1 min) after: {os.getloadavg()[0]:.1f}")
    print(f"wall: {wall:.1f} s   cpu: {cpu:.1f} s   cpu/wall: {cpu / wall:.2f}")
    print(f"raw frames per wall second: {summary.raw_videos * args.frames / wall:.0f}   "
          f"per cpu second: {summary.raw_videos * args.frames / cpu:.0f}")
    print(f"projected wall on {summary.workers} idle cores: {cpu / summary.workers:.1f} s")


if __name__ == "__main__":
    main()
