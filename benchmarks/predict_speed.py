"""End-to-end ``affectseq predict`` speed vs decode-only speed of the same file, measured in one run.

Prints frames/s of (a) decoding alone (PyAV, upright RGB, the physical bound on
this machine), (b) the whole predict pipeline at default settings (decode thread,
tracked faces, alignment, batched model, smoothing, and writing frames.csv,
summary.json and timeline.png), and their ratio. Decode runs before and after
the pipeline and the mean is used, so a change in machine load during the run
affects both sides alike; the 1-minute load average is printed beside them.

    python benchmarks/predict_speed.py                       # sample clip, default model and settings
    python benchmarks/predict_speed.py --backend torch
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared" / "clips" / "WolfgangLanger_Pexels.mp4"


def decode_fps(video: Path) -> tuple[float, float, int]:
    """(wall-clock frames/s, frames per CPU-second, frames) of decoding every frame to upright RGB."""
    from affectseq.io.video import VideoReader

    start, cpu = time.perf_counter(), time.process_time()
    n = sum(1 for _ in VideoReader(video))
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO if DEFAULT_VIDEO.is_file()
                        else REPO / "examples" / "sample.mp4")
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch/ORT intra-op threads (default: torch's)")
    parser.add_argument("--detect-every", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="pipeline runs; the fastest is reported")
    args = parser.parse_args()

    import torch

    from affectseq.io.video import probe_video
    from affectseq.predict.batch import OutputOptions, predict_one
    from affectseq.predict.faces import DEFAULT_DETECT_EVERY
    from affectseq.predict.model import load_model
    from affectseq.predict.pipeline import PredictOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    info = probe_video(args.video)
    t0 = time.perf_counter()
    bundle = load_model(args.model, backend=args.backend, device=args.device)
    load_sec = time.perf_counter() - t0
    options = PredictOptions(detect_every=args.detect_every or DEFAULT_DETECT_EVERY, progress=False)

    decode_before, decode_cpu_before, n_frames = decode_fps(args.video)
    best = None
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start, cpu = time.perf_counter(), time.process_time()
            pred = predict_one(args.video, Path(tmp) / "out", bundle, options, OutputOptions())
            seconds, cpu_sec = time.perf_counter() - start, time.process_time() - cpu
        if best is None or seconds < best[0]:
            best = (seconds, cpu_sec, pred)
    decode_after, decode_cpu_after, _ = decode_fps(args.video)
    seconds, cpu_sec, pred = best
    e2e = n_frames / seconds
    decode = (decode_before + decode_after) / 2
    decode_cpu = (decode_cpu_before + decode_cpu_after) / 2
    e2e_cpu = n_frames / cpu_sec
    t = pred.timings
    print(f"video            {args.video.name}: {n_frames} frames, {info.width}x{info.height}, {info.fps:.3f} fps")
    print(f"model            {bundle.info.model_id} ({bundle.info.extra.get('encoder')}), backend "
          f"{bundle.info.extra.get('backend')} (asked: {args.backend}), "
          f"device {args.device}, torch threads {torch.get_num_threads()}, CPUs {os.cpu_count()}, "
          f"load avg {os.getloadavg()[0]:.1f}")
    print(f"settings         detect_every={options.detect_every}, batch_size={options.batch_size}, mode={options.mode}")
    print(f"model load       {load_sec:.2f} s (once per batch, not counted below)")
    print(f"decode only      {decode:8.1f} frames/s  (before {decode_before:.1f}, after {decode_after:.1f})")
    print(f"predict e2e      {e2e:8.1f} frames/s  ({seconds:.2f} s incl. frames.csv, summary.json, timeline.png)")
    print(f"ratio e2e/decode {e2e / decode:8.3f}")
    print(f"x real time      {e2e / info.fps:8.2f}  (target >= 4, i.e. >= {4 * info.fps:.0f} frames/s)")
    # CPU time is what the run cost whatever else ran on the machine; on a busy shared machine
    # the wall-clock figures above mostly measure the other jobs.
    print(f"per CPU-second   decode {decode_cpu:.1f} frames, predict e2e {e2e_cpu:.1f} frames "
          f"(ratio {e2e_cpu / decode_cpu:.3f}; e2e used {cpu_sec / seconds:.2f} cores on average)")
    print(f"stage seconds    faces+align {t['faces_sec']:.2f}, model {t['model_sec']:.2f}, "
          f"temporal {t['temporal_sec']:.2f}, pipeline total {t['total_sec']:.2f}")
    print(f"stage CPU sec    faces+align {t['faces_cpu_sec']:.2f} (main thread), model {t['model_cpu_sec']:.2f} "
          f"(worker thread), decode ~{n_frames / decode_cpu:.2f} (decode thread), whole run {cpu_sec:.2f}")
    # With two cores of its own the run is bound by its busiest thread or by half its CPU time,
    # whichever is larger: an estimate for an idle 2-core machine, not a measurement.
    bound = max(t["faces_cpu_sec"], t["model_cpu_sec"], n_frames / decode_cpu, cpu_sec / 2)
    print(f"2-core estimate  {n_frames / bound:8.1f} frames/s if the 2 cores were free "
          f"(= frames / max(busiest thread CPU, run CPU / 2)); x real time {n_frames / bound / info.fps:.2f}")
    print(f"faces found      {pred.summary['frames_with_face']}/{n_frames} frames")


if __name__ == "__main__":
    main()
