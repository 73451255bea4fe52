"""ESTIMATE (not a measurement) of wall time to process all of Aff-Wild2, from this machine's measurements.

Inputs: the per-stage CPU costs measured by ``extract_throughput.py`` (JSON) and
the Ray/local ratio measured by ``ray_overhead.py`` (JSON). No GPU was available
when this was written: the GPU and cluster rows are arithmetic on stated
assumptions, printed with the result, and must be labelled as estimates.

Two jobs over ``--frames`` frames (Aff-Wild2: ~3M frames in ~600 videos):

* crops -> features (``affectseq extract`` on ABAW's ``cropped_aligned`` crops):
  JPEG read + preprocess, then the paper CNN;
* raw video -> predictions (``affectseq predict``): decode, MTCNN detection every
  ``detect_every`` frames, alignment, the paper CNN.

Scenarios: (a) this machine's cores, CPU only; (b) one GPU server (``--gpu-host-cores``
cores feed one GPU; CNN and detection move to the GPU, assumed ``--gpu-speedup``
times faster than one core of this machine, decode/JPEG/alignment stay on the CPU);
(c) ``--nodes`` such servers under Ray, with the Ray/local time ratio measured here.

    python benchmarks/aff_wild2_estimate.py --throughput /tmp/extract_throughput.json --ray /tmp/ray_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def hours(frames: float, ms_per_frame: float, parallel: float) -> float:
    """Wall hours for ``frames`` at ``ms_per_frame`` of one core, over ``parallel`` cores (ideal)."""
    return frames * ms_per_frame / 1e3 / parallel / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--throughput", type=Path, default=Path("/tmp/extract_throughput.json"))
    parser.add_argument("--ray", type=Path, default=Path("/tmp/ray_overhead.json"))
    parser.add_argument("--frames", type=float, default=3.0e6)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="cores of this machine")
    parser.add_argument("--gpu-host-cores", type=int, default=16, help="(b) CPU cores beside the GPU")
    parser.add_argument("--gpu-speedup", type=float, default=50.0,
                        help="(b) GPU speed on the CNN and detection vs ONE core of this machine (assumption)")
    parser.add_argument("--nodes", type=int, default=4, help="(c) GPU servers in the Ray cluster")
    args = parser.parse_args()

    t = json.loads(args.throughput.read_text())
    cost = t["breakdown"]
    k = t["detect_every"]
    cpu = {name: cost[key][1] for name, key in (("decode", "decode_ms"), ("detect", "detect_ms_per_call"),
                                                 ("align", "align_ms"), ("encode", "encode_ms"),
                                                 ("crop", "crop_read_preprocess_ms"))}
    threads = cost.get("torch_threads", 1)  # CPU ms are process time: summed over these threads already
    ray_ratio = 1.0
    if args.ray.is_file():
        r = json.loads(args.ray.read_text())
        ray_ratio = max(r["extract_ray_s"] / r["extract_local_s"], 1.0)

    jobs = {
        "crops -> features (extract)": {"cpu_side": cpu["crop"], "gpu_side": cpu["encode"]},
        "raw video -> predictions (predict)": {"cpu_side": cpu["decode"] + cpu["align"],
                                               "gpu_side": cpu["encode"] + cpu["detect"] / k},
    }
    print(f"ESTIMATES for {args.frames / 1e6:.1f}M frames -- arithmetic on measured CPU costs; no GPU was measured.")
    print(f"measured CPU ms/frame on this machine (torch threads {threads}): " +
          ", ".join(f"{n} {v:.2f}" for n, v in cpu.items()) + f"  (detect per call; every {k} frames)")
    print(f"assumptions: ideal core scaling; (b) {args.gpu_host_cores} host cores + 1 GPU {args.gpu_speedup:g}x one "
          f"core on CNN/detection; (c) {args.nodes} x (b) with the measured Ray/local ratio {ray_ratio:.2f}\n")
    print(f"{'job':38s} {'(a) this machine':>18s} {'(b) 1 GPU server':>18s} {f'(c) {args.nodes}-node Ray':>18s}")
    rows = {}
    for job, c in jobs.items():
        a = hours(args.frames, c["cpu_side"] + c["gpu_side"], args.cores)
        # (b): CPU stages over the host cores and the GPU run concurrently; the slower one bounds throughput.
        b = max(hours(args.frames, c["cpu_side"], args.gpu_host_cores),
                hours(args.frames, c["gpu_side"], args.gpu_speedup))
        cl = b / args.nodes * ray_ratio
        rows[job] = {"a_hours": a, "b_hours": b, "c_hours": cl}
        print(f"{job:38s} {a:16.1f} h {b:16.2f} h {cl:16.2f} h")
    print("\n(a) uses this machine's measured CPU cost per frame over all its cores with nothing else running;"
          " the measured wall throughput under today's shared load is lower (see docs/results.md).")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
