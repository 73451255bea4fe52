"""Feature-store benchmark: window throughput and peak anonymous memory, 0.3M vs 3M rows x 300.

Writes two stores of random float16 features directly (the size of Aff-Wild2:
~3M frames, and a tenth of it) under /tmp, then measures in a fresh process per
store, so each peak is its own:

* index: seconds to index every seq2one window (W=100, every frame a target) and
  the bytes the index holds;
* read: random windows/s through ``WindowDataset`` (memory-mapped reads), first
  pass and again over the same windows ("warm": pages already in the page cache);
* train: windows/s of sequence training (the paper's GRU 100-100-50, batch 64,
  DataLoader, forward + backward + Adam) over a fixed number of random windows;
* peak RssAnon (from /proc/self/status, sampled every 5 ms): anonymous memory
  only -- the file-backed pages of the memory-mapped store are not the process's
  memory (the kernel drops them under pressure), so they must not count.

Each store is measured ``--repeat`` times, alternating between the stores;
throughput is the median, memory the worst peak. Prints one table and the
3M/0.3M ratios measured in this run; the claim checked is "flat within 10%".
Stores are deleted afterwards.

    nice -n 10 python benchmarks/feature_store.py [--rows 300000 3000000] [--train-windows 3200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def rss_anon_kib() -> int:
    """Current anonymous resident memory of this process (KiB)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("RssAnon not in /proc/self/status (Linux only)")


class PeakSampler:
    """Samples RssAnon in a background thread; ``peak_kib`` is the maximum seen."""

    def __init__(self, every_sec: float = 0.005):
        self.every_sec, self.peak_kib, self._stop = every_sec, rss_anon_kib(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, rss_anon_kib())
            time.sleep(self.every_sec)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, rss_anon_kib())


def child(store_dir: str, n_read: int, n_train: int, seed: int) -> dict:
    """Measure one store (runs in its own process)."""
    import numpy as np
    import torch

    from affectseq.features.store import FeatureStore
    from affectseq.models.temporal import TemporalModel
    from affectseq.sequences.dataset import WindowDataset, collate_windows
    from affectseq.sequences.windows import WindowSpec
    from affectseq.training.sequence_eval import window_loss

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    model = TemporalModel(300, {"expr": 7, "va": 2})  # paper default GRU 100-100-50, seq2one
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    # Warm-up outside the measurement: torch's lazy imports (dynamo on the first optimiser step) and allocator.
    warm = {"features": torch.zeros(64, 100, 300), "mask": torch.ones(64, 100, dtype=torch.bool),
            "expr": torch.zeros(64, dtype=torch.long), "va": torch.zeros(64, 2), "au": torch.full((64, 13), -1)}
    loss, _ = window_loss(model, warm, torch.device("cpu"))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    baseline_kib = rss_anon_kib()

    with PeakSampler() as sampler:
        started = time.perf_counter()
        store = FeatureStore(store_dir)
        ds = WindowDataset(store, store.video_ids(), WindowSpec(mode="seq2one", length=100, tasks=("expr", "va")))
        index_sec = time.perf_counter() - started

        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(ds), n_read)
        started = time.perf_counter()
        for i in picks:
            ds[int(i)]
        read_sec = time.perf_counter() - started
        started = time.perf_counter()  # the same windows again: their pages are now in the page cache
        for i in picks:
            ds[int(i)]
        warm_read_sec = time.perf_counter() - started

        order = rng.integers(0, len(ds), n_train).tolist()
        loader = torch.utils.data.DataLoader(ds, batch_size=64, sampler=order, collate_fn=collate_windows)
        started = time.perf_counter()
        for batch in loader:
            loss, _ = window_loss(model, batch, torch.device("cpu"))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        train_sec = time.perf_counter() - started
    return {
        "rows": store.total_frames, "videos": len(store), "windows": len(ds),
        "index_sec": index_sec, "index_bytes": ds.index.memory_bytes,
        "read_windows_per_sec": n_read / read_sec, "warm_read_windows_per_sec": n_read / warm_read_sec,
        "train_windows_per_sec": n_train / train_sec,
        "baseline_rss_anon_mib": baseline_kib / 1024, "peak_rss_anon_mib": sampler.peak_kib / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs=2, default=[300_000, 3_000_000])
    parser.add_argument("--read-windows", type=int, default=20_000)
    parser.add_argument("--train-windows", type=int, default=3_200)
    parser.add_argument("--tmp", default="/tmp")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="measurements per store, alternating")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.read_windows, args.train_windows, args.seed)))
        return 0

    from affectseq.features.store_writer import write_random_store

    roots, results = [], []
    try:
        for rows in args.rows:
            root = Path(tempfile.mkdtemp(prefix=f"affectseq-bench-{rows}-", dir=args.tmp))
            roots.append(root)
            started = time.perf_counter()
            write_random_store(root, n_rows=rows, feature_dim=300, video_frames=5000, seed=args.seed)
            write_sec = time.perf_counter() - started
            size_gib = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**30
            results.append({"write_sec": write_sec, "store_gib": size_gib, "runs": []})
        # Alternate the stores (small, big, small, big, ...) so machine load drifts hit both alike.
        for _ in range(args.repeat):
            for root, result in zip(roots, results):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(root), "--read-windows", str(args.read_windows),
                     "--train-windows", str(args.train_windows), "--seed", str(args.seed)],
                    check=True, capture_output=True, text=True,
                ).stdout
                result["runs"].append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    for result in results:
        runs = result.pop("runs")
        result.update(runs[0])
        # Throughput: median over repeats; memory: the worst peak seen.
        for key in ("read_windows_per_sec", "warm_read_windows_per_sec", "train_windows_per_sec", "index_sec"):
            result[key] = statistics.median(r[key] for r in runs)
        result["peak_rss_anon_mib"] = max(r["peak_rss_anon_mib"] for r in runs)
        result["baseline_rss_anon_mib"] = max(r["baseline_rss_anon_mib"] for r in runs)

    print(f"{'rows':>9} {'videos':>6} {'store GiB':>9} {'write s':>7} {'index s':>7} {'index B':>8} "
          f"{'read win/s':>10} {'warm win/s':>10} {'train win/s':>11} {'base MiB':>8} {'peak RssAnon MiB':>16}")
    for r in results:
        print(f"{r['rows']:>9} {r['videos']:>6} {r['store_gib']:>9.2f} {r['write_sec']:>7.1f} {r['index_sec']:>7.2f} "
              f"{r['index_bytes']:>8} {r['read_windows_per_sec']:>10.0f} {r['warm_read_windows_per_sec']:>10.0f} "
              f"{r['train_windows_per_sec']:>11.0f} "
              f"{r['baseline_rss_anon_mib']:>8.1f} {r['peak_rss_anon_mib']:>16.1f}")
    small, big = results
    for key, label in (("peak_rss_anon_mib", "peak RssAnon"), ("read_windows_per_sec", "read windows/s"),
                       ("warm_read_windows_per_sec", "warm read windows/s"),
                       ("train_windows_per_sec", "train windows/s")):
        print(f"ratio {big['rows'] // small['rows']}x rows: {label} {big[key] / small[key]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
