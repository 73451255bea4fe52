"""The speed cost of ``predict --tta-flip`` (each face averaged with its mirror image), measured in one run.

Runs the whole predict pipeline (``affectseq.predict_video``) on the same clip with and without
``tta_flip``, interleaved ``--repeat`` times (the fastest run of each counts, so a burst of load
from other processes hits both alike), and prints frames/s of each, the speed ratio flip/plain
(< 1: flip is slower) by wall clock and by CPU time, and the model stage's CPU time per face.

    python benchmarks/tta_flip_speed.py --repeat 2
    python benchmarks/tta_flip_speed.py --model ferplus-v2 --backend torch
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared" / "clips" / "WolfgangLanger_Pexels.mp4"


def one_run(video: Path, bundle) -> dict[str, float]:
    """Wall and CPU seconds, frames and faces of one predict run with a loaded bundle (default options)."""
    from affectseq.predict.pipeline import PredictOptions, predict_video_table

    start, cpu = time.perf_counter(), time.process_time()
    prediction = predict_video_table(video, bundle, PredictOptions(progress=False))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    table = prediction.table
    faces = int(table[f"prob_{bundle.info.classes[0].lower()}"].notna().sum())
    return {"wall": wall, "cpu": cpu, "frames": int(table["frame_idx"].nunique()), "faces": faces,
            "model_cpu_sec": float(prediction.timings.get("model_cpu_sec", float("nan")))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from affectseq.predict.model import load_model

    bundles = {flip: load_model(args.model, backend=args.backend, device="cpu", tta_flip=flip)
               for flip in (False, True)}
    best: dict[bool, dict[str, float]] = {}
    for _ in range(args.repeat):
        for flip in (False, True):
            run = one_run(args.video, bundles[flip])
            if flip not in best or run["wall"] < best[flip]["wall"]:
                best[flip] = run
    plain, flip = best[False], best[True]
    print(f"model {args.model}, backend {bundles[False].info.extra['backend']}, {args.video.name}: "
          f"{plain['frames']} frames, {plain['faces']} faces; load average {os.getloadavg()[0]:.1f} "
          "(machine shared with other jobs)")
    for name, run in (("plain", plain), ("tta-flip", flip)):
        print(f"{name:9s} {run['frames'] / run['wall']:7.1f} frames/s wall, {run['frames'] / run['cpu']:7.1f} per "
              f"CPU-s; model stage {1000 * run['model_cpu_sec'] / max(run['faces'], 1):.2f} ms CPU per face")
    print(f"speed ratio flip/plain: wall {plain['wall'] / flip['wall']:.3f}, CPU {plain['cpu'] / flip['cpu']:.3f}")


if __name__ == "__main__":
    main()
