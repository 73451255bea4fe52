"""Ray engine overhead vs the local engine on the same machine, measured in one run.

Same inputs, same model, same resources (``--cpus`` cores):

* extract: the local engine (``extract_features``, ``--cpus - 1`` decode workers)
  vs ``extract_with_ray`` on a local Ray instance with ``num_cpus=--cpus`` (one
  task per core, 1 CPU each), on a synthetic ABAW tree of ``--frames`` frames;
* predict: ``run_batch`` vs ``predict_with_ray`` on real clips from ``../shared/clips``.

Ray's start-up (``ray.init``) is timed separately from the work, since a cluster
is started once for many jobs. Prints seconds and the ray/local ratios, with and
without start-up.

    nice -n 10 python benchmarks/ray_overhead.py [--frames 800] [--cpus 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "clips"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=800)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--clips", nargs="+", default=["single_face.mp4", "multi_face_pan.mp4"])
    parser.add_argument("--json", type=Path, default=Path("/tmp/ray_overhead.json"))
    args = parser.parse_args()

    import ray
    import torch

    from affectseq.data.abaw import AbawDataset
    from affectseq.models.factory import save_frame_model
    from affectseq.features.extract import extract_features
    from affectseq.predict.engines import run_batch
    from affectseq.predict.writers import OutputOptions
    from affectseq.predict.pipeline import PredictOptions
    from affectseq.scale.predict_shards import ModelRequest
    from affectseq.scale.ray_engine import RayOptions, extract_with_ray, init_ray, predict_with_ray

    from extract_throughput import make_dataset, paper_cnn

    torch.set_num_threads(args.cpus)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="affectseq-ray-") as tmp:
        work = Path(tmp)
        data = AbawDataset(make_dataset(work / "data", args.frames))
        model = paper_cnn()
        model_path = save_frame_model(work / "frame.safetensors", model)
        videos = [CLIPS / c for c in args.clips]
        options = PredictOptions(detector="mtcnn", progress=False)
        output = OutputOptions(timeline=False)
        request = ModelRequest(str(model_path), backend="torch", device="cpu")

        start = time.perf_counter()
        local = extract_features(data, model, work / "local", batch_size=64, num_workers=args.cpus - 1,
                                 device="cpu", progress=False)
        results["extract_local_s"] = time.perf_counter() - start
        start = time.perf_counter()
        run_batch(videos, work / "pred_local", request.load(), options, output)
        results["predict_local_s"] = time.perf_counter() - start

        start = time.perf_counter()
        init_ray(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        results["ray_init_s"] = time.perf_counter() - start
        try:
            opts = RayOptions(cpus_per_task=1.0)
            start = time.perf_counter()
            remote = extract_with_ray(data, model, work / "ray", batch_size=64, device="cpu", options=opts,
                                      progress=False)
            results["extract_ray_s"] = time.perf_counter() - start
            start = time.perf_counter()
            predict_with_ray(videos, work / "pred_ray", request, options, output, ray_options=opts)
            results["predict_ray_s"] = time.perf_counter() - start
        finally:
            ray.shutdown()
        assert remote.n_frames_encoded == local.n_frames_encoded
    results["frames"] = local.n_frames_encoded
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs (using {args.cpus}), 1-min load average {load:.1f} (shared)")
    print(f"ray.init (local instance, once per cluster): {results['ray_init_s']:.1f} s")
    for job in ("extract", "predict"):
        lo, ra = results[f"{job}_local_s"], results[f"{job}_ray_s"]
        print(f"{job:8s} local {lo:7.1f} s   ray {ra:7.1f} s   ratio ray/local {ra / lo:.2f}   "
              f"with ray.init {(ra + results['ray_init_s']) / lo:.2f}")
    args.json.write_text(json.dumps({**results, "load_avg_1min": load}, indent=2))
    print(f"-> {args.json}")


if __name__ == "__main__":
    main()
