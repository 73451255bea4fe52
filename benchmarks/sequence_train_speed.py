"""Sequence training and temporal-model inference speed: this checkout vs older code (``--baseline-src``).

Each run, in its own process with one torch thread: writes a random feature store (the size of the
paper's inputs: 300-d features, W=100 seq2one windows), trains the paper's GRU 100-100-50 for one
epoch of ``--windows`` windows (``train_sequence``: DataLoader, forward, backward, Adam; the
engine's ``train_windows_per_sec``), and times the trained model's forward on batches of 64 windows
in eval mode (what ``predict``'s temporal stage runs). Runs alternate ours/baseline ``--repeat``
times; the fastest of each is compared (ratio > 1: ours is faster). The store and runs live
under a temporary folder, deleted afterwards.

    python benchmarks/sequence_train_speed.py --baseline-src /tmp/baseline/src --repeat 3
    python benchmarks/sequence_train_speed.py --arch tcn           # one architecture alone, this checkout

``--baseline-src`` is the ``src/`` of another checkout (e.g. ``git archive b43f994 src | tar -x -C /tmp/base``).
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


def one_run(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    import affectseq
    from affectseq.config import load_config
    from affectseq.features.store_writer import write_random_store
    from affectseq.training.sequence import SequenceTrainConfig, train_sequence

    with tempfile.TemporaryDirectory(prefix="affectseq-seqbench-") as tmp:
        store = write_random_store(Path(tmp) / "store", n_rows=args.rows, feature_dim=300, video_frames=500, seed=0)
        model = {"arch": args.arch} if args.arch != "gru" else {}
        config = load_config(SequenceTrainConfig, overrides={
            "window": 100, "epochs": 1, "batch_size": 64, "max_windows_per_epoch": args.windows,
            "max_val_windows": 256, "device": "cpu", "threads": 1, "seed": 0, "model": model})
        result = train_sequence(store, Path(tmp) / "run", config, progress=False)
        train_wps = float(result.history[0]["train_windows_per_sec"])
        from affectseq.models.bundle import load_sequence_bundle

        temporal = load_sequence_bundle(Path(tmp) / "run").temporal_model
        x, m = torch.randn(64, 100, 300), torch.rand(64, 100) > 0.1
        with torch.no_grad():
            temporal(x, m)  # warm-up
            start, cpu, n = time.perf_counter(), time.process_time(), 0
            while time.perf_counter() - start < args.infer_sec:
                temporal(x, m)
                n += 64
            infer_wps = n / (time.perf_counter() - start)
    print(json.dumps({"train_windows_per_sec": train_wps, "infer_windows_per_sec": infer_wps,
                      "code": str(Path(affectseq.__file__).parents[1])}))


def compare_code(args: argparse.Namespace) -> None:
    command = [sys.executable, str(Path(__file__).resolve()), "--one-run", "--rows", str(args.rows),
               "--windows", str(args.windows), "--infer-sec", str(args.infer_sec), "--arch", args.arch]
    sources = {"ours": REPO / "src"}
    if args.baseline_src is not None:
        sources["baseline"] = args.baseline_src.resolve()
    runs: dict[str, list[dict]] = {name: [] for name in sources}
    for i in range(args.repeat):
        # Alternate which goes first, so a trend in machine load favours neither side.
        for name in (list(sources) if i % 2 == 0 else list(sources)[::-1]):
            env = {**os.environ, "PYTHONPATH": str(sources[name]), "OMP_NUM_THREADS": "1"}
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            runs[name].append(r)
            print(f"run {i + 1} {name:8s} train {r['train_windows_per_sec']:7.1f} windows/s, inference "
                  f"{r['infer_windows_per_sec']:7.1f} windows/s ({r['code']}), load avg {os.getloadavg()[0]:.1f}")
    best = {name: {k: max(r[k] for r in rs) for k in ("train_windows_per_sec", "infer_windows_per_sec")}
            for name, rs in runs.items()}
    for name, b in best.items():
        print(f"fastest {name:8s} train {b['train_windows_per_sec']:.1f} windows/s, "
              f"inference {b['infer_windows_per_sec']:.1f} windows/s (best of {args.repeat})")
    if "baseline" in best:
        for key in ("train_windows_per_sec", "infer_windows_per_sec"):
            median = {name: statistics.median(r[key] for r in rs) for name, rs in runs.items()}
            print(f"speed ratio {key[:-16]:9s} ours/baseline = {best['ours'][key] / best['baseline'][key]:.3f} "
                  f"(fastest runs), {median['ours'] / median['baseline']:.3f} (medians)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-src", type=Path, default=None, metavar="PATH")
    parser.add_argument("--arch", default="gru", help="temporal architecture (baselines before the registry: gru)")
    parser.add_argument("--rows", type=int, default=20000, help="frames in the random store")
    parser.add_argument("--windows", type=int, default=1920, help="training windows (one epoch)")
    parser.add_argument("--infer-sec", type=float, default=5.0, help="seconds of timed inference")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        one_run(args)
    else:
        compare_code(args)


if __name__ == "__main__":
    main()
