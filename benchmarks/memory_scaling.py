"""Peak anonymous memory (RssAnon) of extraction and of sequence training vs dataset size: flat?

Each measurement runs in a fresh child process; the parent samples RssAnon (from
``/proc/<pid>/status``) of the child and all its descendants (DataLoader workers)
every 10 ms and keeps the peak of their sum. RssAnon excludes file-backed pages
(memory-mapped stores, page cache), which the kernel can drop at will.

* extract: ``extract_features`` over an ABAW-layout tree of ``--extract-frames``
  frames (videos of ``--video-frames``, crops are symlinks to 64 distinct 112x112
  JPEGs: building 100k real crops would take hours here), 2 decode workers. The
  encoder is a stub with the paper CNN's spec and output size (a fixed random
  projection of the pooled image): the CNN's activations are a constant per
  batch, what can grow with the dataset is the pipeline (plan, index, buffers,
  queues), which runs unchanged.
* train: ``affectseq.training.sequence.train_sequence`` (the real loop, one epoch
  of ``--train-windows`` windows, validation capped the same) on stores of
  ``--train-rows`` rows x 300 written directly with random features by
  ``affectseq.features.store_writer.write_random_store`` (H5's writer, also used by
  ``benchmarks/feature_store.py``).

Prints the peaks and the large/small ratio per part (the claim: within 1.10).

    nice -n 10 python benchmarks/memory_scaling.py [--part extract|train|all] \\
        [--extract-frames 10000 100000] [--train-rows 300000 3000000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPR_HEADER = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise"


def tree_rss_anon_kib(pid: int) -> tuple[int, int]:
    """(RssAnon of ``pid`` plus all its descendants, RssAnon of ``pid`` alone) in KiB; 0 for gone processes."""
    total, own, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status", encoding="ascii") as fh:
                kib = next((int(line.split()[1]) for line in fh if line.startswith("RssAnon:")), 0)
            total, own = total + kib, kib if p == pid else own
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total, own


def run_child(args: list[str]) -> tuple[int, int, float, str]:
    """Run this script as a child with ``args``.

    Returns (peak RssAnon of the process tree, peak of the child's main process alone, seconds,
    its last stdout line). Forked workers share pages copy-on-write, and RssAnon counts a
    shared page in every process that maps it, so the tree sum over-counts; the main process
    alone is the exact figure for what the job itself holds.
    """
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True)
    peak, peak_main = 0, 0
    while proc.poll() is None:
        total, own = tree_rss_anon_kib(proc.pid)
        peak, peak_main = max(peak, total), max(peak_main, own)
        time.sleep(0.01)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode:
        raise SystemExit(f"child {args} failed with {proc.returncode}")
    return peak, peak_main, time.perf_counter() - start, out.strip().splitlines()[-1] if out.strip() else ""


# -- extraction -------------------------------------------------------------------------------------------------
def build_link_tree(root: Path, n_frames: int, video_frames: int) -> Path:
    """An ABAW 6 tree of ``n_frames`` frames: EXPR files + crops symlinked to 64 distinct JPEGs."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    pool = root / "pool"
    pool.mkdir(parents=True)
    sources = []
    for i in range(64):
        path = pool / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)).save(path, quality=90)
        sources.append(path)
    ann = root / "6th_ABAW_Annotations" / "EXPR_Recognition_Challenge" / "Train_Set"
    ann.mkdir(parents=True)
    for v in range(-(-n_frames // video_frames)):
        n = min(video_frames, n_frames - v * video_frames)
        vid = f"v{v:04d}"
        labels = rng.integers(0, 7, n)
        (ann / f"{vid}.txt").write_text(EXPR_HEADER + "\n" + "\n".join(map(str, labels)) + "\n")
        crops = root / "cropped_aligned" / vid
        crops.mkdir(parents=True)
        for i in range(n):
            (crops / f"{i + 1:05d}.jpg").symlink_to(sources[i % len(sources)])
    return root


def child_extract(data: str, out: str, workers: int) -> None:
    import torch

    from affectseq.data.abaw import AbawDataset
    from affectseq.features.encoders import create_encoder
    from affectseq.features.extract import extract_features

    class StubEncoder(torch.nn.Module):
        """The paper CNN's spec and feature size; a pooled random projection instead of the convolutions."""

        def __init__(self) -> None:
            super().__init__()
            self.spec = create_encoder("paper_cnn").spec
            self.proj = torch.nn.Linear(64, self.spec.feature_dim)

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(torch.nn.functional.adaptive_avg_pool2d(x, 8).flatten(1))

    torch.manual_seed(0)
    report = extract_features(AbawDataset(data), StubEncoder(), out, batch_size=128, num_workers=workers,
                              device="cpu", progress=False)
    print(json.dumps({"frames": report.n_frames_encoded, "videos": report.n_written}))


# -- training ---------------------------------------------------------------------------------------------------
def child_train(store: str, run_dir: str, windows: int) -> None:
    import torch

    from affectseq.training.sequence import SequenceTrainConfig, train_sequence

    torch.set_num_threads(1)
    config = SequenceTrainConfig(task="expr", epochs=1, batch_size=64, max_windows_per_epoch=windows,
                                 max_val_windows=windows, eval_batch_size=256)
    result = train_sequence(store, run_dir, config, progress=False)
    print(json.dumps({"history": len(result.history)}))


def measure(part: str, sizes: list[int], work: Path, opts: argparse.Namespace) -> list[dict]:
    rows = []
    for n in sizes:
        if part == "extract":
            data = build_link_tree(work / f"tree{n}", n, opts.video_frames)
            peak, main_peak, sec, out = run_child(["extract", str(data), str(work / f"store{n}"), str(opts.workers)])
        else:
            from affectseq.features.store_writer import write_random_store

            store = write_random_store(work / f"rand{n}", n_rows=n, feature_dim=300,
                                       video_frames=opts.store_video_frames, seed=0)
            peak, main_peak, sec, out = run_child(["train", str(store), str(work / f"run{n}"), str(opts.train_windows)])
        rows.append({"part": part, "size": n, "peak_rss_anon_mib": peak / 1024, "main_peak_rss_anon_mib":
                     main_peak / 1024, "seconds": sec, "child": out})
        print(f"  {part:8s} {n:>9,d}: peak RssAnon {peak / 1024:8.1f} MiB (process tree), {main_peak / 1024:8.1f} MiB "
              f"(main process)  ({sec:.0f} s)", flush=True)
        shutil.rmtree(work / (f"tree{n}" if part == "extract" else f"rand{n}"), ignore_errors=True)
    for key, what in (("peak_rss_anon_mib", "process tree"), ("main_peak_rss_anon_mib", "main process")):
        ratio = rows[-1][key] / rows[0][key]
        print(f"  {part}: peak ratio {sizes[-1]:,} / {sizes[0]:,} = {ratio:.3f} ({what}; "
              f"{'flat within 10%' if ratio <= 1.10 else 'NOT flat within 10%'})")
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        if kind == "extract":
            child_extract(rest[0], rest[1], int(rest[2]))
        else:
            child_train(rest[0], rest[1], int(rest[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("extract", "train", "all"), default="all")
    parser.add_argument("--extract-frames", type=int, nargs=2, default=[10_000, 100_000])
    parser.add_argument("--video-frames", type=int, default=5000, help="extract: frames per video (Aff-Wild2 ~5.5k)")
    parser.add_argument("--store-video-frames", type=int, default=5000, help="train: frames per stored video")
    parser.add_argument("--workers", type=int, default=2, help="extraction decode workers")
    parser.add_argument("--train-rows", type=int, nargs=2, default=[300_000, 3_000_000])
    parser.add_argument("--train-windows", type=int, default=3200)
    parser.add_argument("--json", type=Path, default=Path("/tmp/memory_scaling.json"))
    parser.add_argument("--tmp", type=Path, default=None, help="work folder (default: a new one under /tmp)")
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="affectseq-mem-", dir=opts.tmp))
    print(f"machine: {os.cpu_count()} CPUs, 1-min load average {os.getloadavg()[0]:.1f}; work dir {work}")
    rows = []
    try:
        if opts.part in ("extract", "all"):
            rows += measure("extract", opts.extract_frames, work, opts)
        if opts.part in ("train", "all"):
            rows += measure("train", opts.train_rows, work, opts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    opts.json.write_text(json.dumps(rows, indent=2))
    print(f"-> {opts.json}")


if __name__ == "__main__":
    main()
