"""``affectseq predict`` against the ``fer`` package (a peer toolkit) on the 20-s sample clip, whole process and in-process.

Each round runs, one after the other (interleaved, so machine load hits both):

  (a) ``affectseq predict CLIP -o DIR`` as a fresh process (this checkout's ``src``; default
      settings: MTCNN every 8 frames + tracking, the default model, frames.csv, summary.json
      and timeline.png);
  (b) ``fer`` in its own interpreter (``--fer-python``): ``FER()`` with its defaults (OpenCV
      Haar cascade + its TFLite expression model), ``detect_emotions`` on every frame decoded
      with OpenCV, one CSV row per face -- the per-frame loop fer's documentation shows.

Prints per round and as medians: whole-process wall seconds of each and ours/fer (target
<= 0.2), and in-process frames/s: ours = frames / predict's own seconds (``summary.json``'s
``processing.fps``: detector set-up included), fer = frames / its loop (model set-up excluded),
and their ratio (target >= 8).

``fer`` needs TensorFlow, which affectseq does not: install it beside, in a virtual environment
that sees the system packages (fer 25.10.3 pins facenet-pytorch, which pins an old torch: its
dependencies are installed without it; fer imports it only for ``FER(mtcnn=True)``)::

    python -m venv --system-site-packages /tmp/fer-venv
    /tmp/fer-venv/bin/pip install --no-deps fer==25.10.3 facenet-pytorch==2.6.0
    /tmp/fer-venv/bin/pip install tensorflow-cpu==2.21.0 "moviepy<2" ffmpeg-python opencv-contrib-python
    python benchmarks/predict_vs_fer.py --fer-python /tmp/fer-venv/bin/python --runs 3

``--baseline-src`` adds an earlier checkout's ``predict`` to each round (the "before" figures), e.g. the
commit before issue #24: ``git worktree add /tmp/before b43f994`` then ``--baseline-src /tmp/before/src``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample.mp4"

FER_SCRIPT = r"""
import csv, json, sys, time
import cv2
from fer.fer import FER
clip, out = sys.argv[1], sys.argv[2]
detector = FER()
cap = cv2.VideoCapture(clip)
frames, rows, start = 0, [], time.perf_counter()
while True:
    ok, bgr = cap.read()
    if not ok:
        break
    for face in detector.detect_emotions(bgr):
        rows.append([frames, *face["box"], *face["emotions"].values()])
    frames += 1
loop = time.perf_counter() - start
with open(out, "w", newline="") as fh:
    csv.writer(fh).writerows(rows)
print("FER=" + json.dumps({"frames": frames, "loop_sec": loop, "faces": len(rows)}))
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """(wall seconds, stdout) of one process; exits on failure."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{cmd[:3]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def ours(src: Path, clip: Path, out: Path) -> tuple[float, dict]:
    """(wall seconds, summary.json) of one ``affectseq predict`` process run from ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src))
    wall, _ = timed([sys.executable, "-m", "affectseq", "predict", str(clip), "-o", str(out)], env)
    return wall, json.loads((out / clip.stem / "summary.json").read_text())


def one_round(clip: Path, tmp: Path, i: int, fer_python: str, baseline_src: Path | None) -> dict[str, float]:
    ours_wall, summary = ours(REPO / "src", clip, tmp / f"ours-{i}")
    before = {}
    if baseline_src is not None:
        base_wall, base_summary = ours(baseline_src, clip, tmp / f"base-{i}")
        before = {"base_wall": base_wall, "base_fps": float(base_summary["processing"]["fps"])}
    # fer with its own defaults: no PYTHONPATH, no thread limits (affectseq sets its own per stage).
    fer_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OMP_NUM_THREADS")}
    fer_wall, stdout = timed([fer_python, "-c", FER_SCRIPT, str(clip), str(tmp / f"fer-{i}.csv")], fer_env)
    fer = json.loads([ln for ln in stdout.splitlines() if ln.startswith("FER=")][-1][4:])
    return {"ours_wall": ours_wall, "fer_wall": fer_wall, "ours_fps": float(summary["processing"]["fps"]),
            "fer_fps": fer["frames"] / fer["loop_sec"], "fer_faces": fer["faces"],
            "ours_faces": summary.get("frames_with_face", 0), **before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=SAMPLE, help="video (default: examples/sample.mp4, 20 s)")
    parser.add_argument("--fer-python", required=True, help="python of an environment with fer installed")
    parser.add_argument("--runs", type=int, default=3, help="timed rounds after one warm-up (default %(default)s)")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="also run predict from this src folder (an earlier checkout: the 'before' ratios)")
    args = parser.parse_args(argv)
    print(f"clip {args.clip.name}; {args.runs} interleaved rounds after a warm-up; CPUs {os.cpu_count()}, "
          f"load avg at start {os.getloadavg()[0]:.1f}")
    rounds = []
    with tempfile.TemporaryDirectory(prefix="predict-vs-fer-") as tmp:
        for i in range(args.runs + 1):
            r = one_round(args.clip, Path(tmp), i, args.fer_python, args.baseline_src)
            label = "warm-up" if i == 0 else f"round {i}"
            print(f"  {label:8s} wall ours {r['ours_wall']:6.2f} s, fer {r['fer_wall']:6.2f} s "
                  f"(ours/fer {r['ours_wall'] / r['fer_wall']:.3f}); frames/s ours {r['ours_fps']:6.1f}, "
                  f"fer {r['fer_fps']:5.1f} ({r['ours_fps'] / r['fer_fps']:.1f}x); "
                  f"frames with a face ours {r['ours_faces']}, fer faces {r['fer_faces']}")
            if "base_wall" in r:
                print(f"           before (baseline) wall {r['base_wall']:6.2f} s (before/fer "
                      f"{r['base_wall'] / r['fer_wall']:.3f}); frames/s {r['base_fps']:6.1f} "
                      f"({r['base_fps'] / r['fer_fps']:.1f}x fer)")
            if i:
                rounds.append(r)
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"median: wall ours {med['ours_wall']:.2f} s vs fer {med['fer_wall']:.2f} s -> ours/fer "
          f"{med['ours_wall'] / med['fer_wall']:.3f} (target <= 0.2); in-process frames/s ours "
          f"{med['ours_fps']:.1f} vs fer {med['fer_fps']:.1f} -> {med['ours_fps'] / med['fer_fps']:.1f}x (target >= 8); "
          f"load avg at end {os.getloadavg()[0]:.1f}")
    if "base_wall" in med:
        print(f"median before: wall {med['base_wall']:.2f} s -> before/fer {med['base_wall'] / med['fer_wall']:.3f}; "
              f"frames/s {med['base_fps']:.1f} -> {med['base_fps'] / med['fer_fps']:.1f}x fer; "
              f"after/before wall {med['ours_wall'] / med['base_wall']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
