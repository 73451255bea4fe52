"""Start-up cost of ``affectseq predict``: wall time on a 1-second clip, this checkout vs a baseline.

On a short clip a predict run is mostly process start-up (imports, model load), so this
times whole ``affectseq predict`` processes on a 1-second clip (the first 24 frames of
examples/sample.mp4, written with PyAV into a temp dir):

  (a) the current checkout (its ``src`` on PYTHONPATH),
  (b) ``--baseline-rev REV`` checked out with ``git worktree add`` into a temp dir,

  (c) ``python -c "import torch"`` alone (the yardstick of issue #24: a predict run on a
      1-second clip should take at most 0.9x of it),

N times each (default 5), interleaved a, b, c, a, b, c so a change in machine load hits all;
one untimed warm-up run each comes first (byte-compiles the worktree, fills the ONNX
export cache). Prints the median wall and CPU seconds of each and their ratios, then
the cumulative import cost of torch, torchvision, onnxruntime, matplotlib and pandas
from ``python -X importtime`` in one more run of each checkout ("-" = not imported).

    python benchmarks/predict_startup.py --baseline-rev b43f994
    python benchmarks/predict_startup.py --baseline-rev HEAD~3 --runs 9 --backend torch
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample.mp4"
IMPORTS = ("torch", "torchvision", "torch._dynamo", "onnxruntime", "matplotlib", "pandas")


def make_clip(src: Path, dst: Path, n_frames: int = 24) -> Path:
    """The first ``n_frames`` of ``src`` re-encoded (H.264, same size and rate) to ``dst``."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream_in = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=stream_in.average_rate)
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        for i, frame in enumerate(inp.decode(stream_in)):
            if i == n_frames:
                break
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    return dst


def predict_cmd(src_dir: Path, clip: Path, out: Path, backend: str | None,
                importtime: bool = False) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one predict process run from ``src_dir``."""
    args = ["predict", str(clip), "-o", str(out), *(["--backend", backend] if backend else [])]
    code = f"from affectseq.cli import main; raise SystemExit(main({args!r}))"
    env = dict(os.environ, PYTHONPATH=str(src_dir))
    return [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code], env


def run_once(src_dir: Path | None, clip: Path, out: Path, backend: str | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one predict process (``src_dir`` None: of ``python -c "import torch"``)."""
    if src_dir is None:
        cmd, env = [sys.executable, "-c", "import torch"], dict(os.environ)
    else:
        cmd, env = predict_cmd(src_dir, clip, out, backend)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=out.parent, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"predict failed in {src_dir}:\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def import_costs(src_dir: Path, clip: Path, out: Path, backend: str | None) -> dict[str, float]:
    """Cumulative import milliseconds of each module of IMPORTS (absent = not imported)."""
    cmd, env = predict_cmd(src_dir, clip, out, backend, importtime=True)
    proc = subprocess.run(cmd, env=env, cwd=out.parent, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"predict failed in {src_dir}:\n{proc.stderr[-3000:]}")
    costs = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        if name.strip() in IMPORTS:
            costs[name.strip()] = int(cumulative) / 1000.0
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-rev", required=True, help="git revision to compare with (e.g. 3534947)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each checkout (default %(default)s)")
    parser.add_argument("--backend", default=None, help="predict --backend (default: predict's own, ONNX on CPU)")
    args = parser.parse_args()

    rev = subprocess.run(["git", "rev-parse", "--short", args.baseline_rev], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="predict-startup-") as tmp:
        tmp = Path(tmp)
        worktree = tmp / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(worktree), rev], cwd=REPO, check=True)
        try:
            clip = make_clip(SAMPLE, tmp / "clip_1s.mp4")
            checkouts = {"current": REPO / "src", f"baseline {rev}": worktree / "src", "import torch": None}
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in checkouts}
            for i in range(args.runs + 1):  # run 0: warm-up, not counted
                for name, src in checkouts.items():
                    out = tmp / "runs" / f"{name.split()[0]}-{i}"
                    out.parent.mkdir(exist_ok=True)
                    result = run_once(src, clip, out, args.backend)
                    if i:
                        times[name].append(result)
            costs = {name: import_costs(src, clip, tmp / "runs" / f"{name.split()[0]}-imports", args.backend)
                     for name, src in checkouts.items() if src is not None}
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=False)

    print(f"predict on a 1-second clip (24 frames of {SAMPLE.name}), backend {args.backend or 'default'}, "
          f"{args.runs} runs each, interleaved; CPUs {os.cpu_count()}, load avg {os.getloadavg()[0]:.1f} "
          "(a busy machine inflates wall time; CPU time is what the process itself used)")
    medians = {}
    for name, runs in times.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        medians[name] = (statistics.median(walls), statistics.median(cpus))
        print(f"  {name:18s} wall median {medians[name][0]:6.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)}); "
              f"CPU median {medians[name][1]:6.2f} s")
    (cur_wall, cur_cpu), (base_wall, base_cpu), (torch_wall, torch_cpu) = medians.values()
    print(f"  baseline / current: wall {base_wall / cur_wall:.2f}x, CPU {base_cpu / cur_cpu:.2f}x")
    print(f"  predict / import torch: current wall {cur_wall / torch_wall:.2f} (target <= 0.9), "
          f"baseline wall {base_wall / torch_wall:.2f}; CPU current {cur_cpu / torch_cpu:.2f}, "
          f"baseline {base_cpu / torch_cpu:.2f}")
    print("import cost (ms, cumulative, from -X importtime; '-' = not imported)")
    print("  " + " " * 18 + "".join(f"{m:>15s}" for m in IMPORTS))
    for name, c in costs.items():
        print(f"  {name:18s}" + "".join(f"{c[m]:15.0f}" if m in c else f"{'-':>15s}" for m in IMPORTS))


if __name__ == "__main__":
    main()
