"""Where a short ``predict`` run's time goes: the fixed costs stage by stage, on a 1-s clip and the 20-s sample.

Each clip is predicted in a fresh process (so imports count, as for a user) that times, in order:

  interpreter  python start-up to the first line (measured by the parent: ``python -c pass``)
  imports      affectseq's predict stack (cli, model loading, pipeline, writers)
  model load   ``load_model("default")``: header, shipped ONNX graph, ONNX Runtime session
  detector     building the tracker and its MTCNN (three ONNX Runtime sessions, or torch)
  first batch  the first frame-model call (8 crops) and the first detection, each minus a second call
  video set-up ``predict_video_table``'s own set-up: probing the file, building its tracker
  video        the rest of it: decode, detect/track, align, model, smoothing, the table
  frames.csv / timeline.png / summary.json   each writer
  other, in process   the rest of the script (the run fingerprint, publishing the folder)
  (exit)       wall minus all of the above: interpreter shut-down (threads, ONNX Runtime, PyAV)

Medians over ``--runs`` processes per clip, the two clips interleaved. The 1-s clip is the first 24 frames
of examples/sample.mp4.

    python benchmarks/predict_stages.py --runs 3
    python benchmarks/predict_stages.py --runs 3 --backend torch
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
clip, out, backend = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy as np
from affectseq.cli import build_parser
from affectseq.predict.batch import predict_one
from affectseq.predict.model import load_model
from affectseq.predict.pipeline import PredictOptions, default_face_source
from affectseq.predict.writers import OutputOptions
from pathlib import Path
t = {"imports": time.perf_counter() - t0}
s = time.perf_counter(); bundle = load_model("default", backend=backend); t["model load"] = time.perf_counter() - s
options = PredictOptions()
s = time.perf_counter(); tracker = default_face_source(options, bundle); t["detector"] = time.perf_counter() - s
crops = np.zeros((8, 112, 112, 3), np.uint8)
s = time.perf_counter(); bundle.frame_stage(crops); first = time.perf_counter() - s
s = time.perf_counter(); bundle.frame_stage(crops); again = time.perf_counter() - s
frame = np.full((360, 640, 3), 128, np.uint8)
s = time.perf_counter(); tracker.detector.detect(frame); first_det = time.perf_counter() - s
s = time.perf_counter(); tracker.detector.detect(frame); again_det = time.perf_counter() - s
t["first batch"] = max(first - again, 0) + max(first_det - again_det, 0)
pred = predict_one(Path(clip), Path(out), bundle, options, OutputOptions())
t["video set-up"] = pred.timings["setup_sec"]  # probing the file, building its tracker
t["video"] = pred.timings["total_sec"] - pred.timings["setup_sec"]
for name, label in (("table", "frames.csv"), ("timeline", "timeline.png"), ("summary", "summary.json")):
    t[label] = pred.timings.get(f"write_{name}_sec", 0.0)
t["other, in process"] = time.perf_counter() - t0 - sum(t.values())  # fingerprint, publishing the folder
print("STAGES=" + json.dumps({"stages": t, "frames": pred.summary["frames_processed"],
                              "setup_sec": pred.timings["setup_sec"]}))
"""


def run_child(clip: Path, out: Path, backend: str) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(clip), str(out), backend], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    return wall, json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("STAGES=")][-1][7:])


def interpreter_sec() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    from predict_startup import make_clip  # the same 1-s clip as the start-up benchmark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", default="auto", help="load_model backend (default %(default)s)")
    args = parser.parse_args(argv)
    print(f"backend {args.backend}; {args.runs} processes per clip, interleaved, after a warm-up; "
          f"CPUs {os.cpu_count()}, load avg at start {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="predict-stages-") as tmp:
        tmp = Path(tmp)
        clips = {"1-s clip": make_clip(SAMPLE, tmp / "clip_1s.mp4"), "20-s sample": SAMPLE}
        results: dict[str, list[tuple[float, float, dict]]] = {name: [] for name in clips}
        for i in range(args.runs + 1):
            for name, clip in clips.items():
                interp = interpreter_sec()
                wall, data = run_child(clip, tmp / f"out-{i}-{name[:2]}", args.backend)
                if i:
                    results[name].append((wall, interp, data))
    for name, runs in results.items():
        frames = runs[0][2]["frames"]
        wall = statistics.median(r[0] for r in runs)
        stages = {"interpreter": statistics.median(r[1] for r in runs)}
        for key in runs[0][2]["stages"]:
            stages[key] = statistics.median(r[2]["stages"][key] for r in runs)
        stages["(exit)"] = wall - sum(stages.values())
        print(f"{name} ({frames} frames): whole process {wall:.2f} s (median)")
        for key, sec in stages.items():
            print(f"  {key:14s} {sec:6.3f} s  {100 * sec / wall:5.1f} %")
    print(f"load avg at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
