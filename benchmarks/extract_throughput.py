"""Extraction throughput vs decode workers, and the per-frame cost of each stage, measured in one run.

Part 1 -- ``affectseq extract`` (crops -> features) on a synthetic ABAW tree
(``affectseq.data.synth``, 112x112 JPEG crops) with the paper CNN (random
weights: speed does not depend on them): frames/s with 1 and 2 DataLoader decode
workers, same data, same batch size; ratio workers=2 / workers=1.

Part 2 -- per-frame cost breakdown on a real clip (``../shared/clips``):
decode (PyAV, upright RGB), detect (MTCNN, one call), align (``align_face``),
encode (``preprocess_faces`` + paper CNN, batched); plus, for extraction from
crops, JPEG read + preprocessing. Detection runs every ``--detect-every`` frames
in ``predict`` (tracking between), so its per-frame share is divided by that.

Prints a table and writes ``--json`` (read by ``aff_wild2_estimate.py``).

    nice -n 10 python benchmarks/extract_throughput.py [--frames 1200] [--json /tmp/extract_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "clips" / "WolfgangLanger_Pexels.mp4"


def make_dataset(root: Path, n_frames: int, n_videos: int = 4) -> Path:
    """A synthetic ABAW tree with ``n_frames`` frames in total (crops only)."""
    from affectseq.config import load_config
    from affectseq.data.synth import SynthConfig, generate

    cfg = load_config(SynthConfig, overrides=[f"n_videos={n_videos}", f"n_frames={n_frames // n_videos}",
                                              "seed=11", "write_videos=false", "two_person_fraction=0"])
    generate(root, cfg, show_progress=False)
    return root


def paper_cnn():
    import torch

    from affectseq.features.encoders import create_encoder
    from affectseq.features.frame_model import FrameModel
    from affectseq.labels import EXPR_CLASSES_7

    torch.manual_seed(0)
    return FrameModel(create_encoder("paper_cnn"), tasks=("expr",), expr_classes=EXPR_CLASSES_7).eval()


def throughput(data: Path, work: Path, workers: int, batch_size: int) -> dict:
    """One full extraction into a fresh store; frames/s as the report counts it."""
    from affectseq.data.abaw import AbawDataset
    from affectseq.features.extract import extract_features

    report = extract_features(AbawDataset(data), paper_cnn(), work / f"store_w{workers}", batch_size=batch_size,
                              num_workers=workers, device="cpu", progress=False)
    return {"workers": workers, "frames": report.n_frames_encoded, "seconds": report.seconds,
            "frames_per_sec": report.frames_per_sec}


def _ms_per(fn, n: int) -> tuple[float, float]:
    """(wall ms, CPU ms of this process, all threads) per call of ``fn``, over ``n`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - wall) / n * 1e3, (time.process_time() - cpu) / n * 1e3


def breakdown(clip: Path, data: Path, n_frames: int = 96, batch: int = 64) -> dict:
    """Milliseconds per frame of each stage, wall and CPU (CPU time is what a loaded machine does not inflate)."""
    import numpy as np
    import torch

    from affectseq.data.frames import read_image_rgb
    from affectseq.faces import align_face, create_detector
    from affectseq.features.preprocess import preprocess_faces
    from affectseq.io.video import VideoReader

    # One thread: per-core costs (what the estimates scale by), and no OpenMP spin-waits inflating CPU time.
    torch.set_num_threads(1)
    frames: list = []

    def decode() -> None:
        for frame in VideoReader(clip):
            frames.append(frame.rgb)
            if len(frames) == n_frames:
                break

    decode_ms = tuple(v / n_frames for v in _ms_per(decode, 1))

    detector = create_detector("mtcnn")
    detector.detect(frames[0])  # warm-up (first call builds the pyramid kernels)
    picks = frames[:: max(1, len(frames) // 8)][:8]
    detections: list = []
    detect_ms = tuple(v / len(picks) for v in _ms_per(lambda: detections.extend(detector.detect(f) for f in picks), 1))
    det = next(d[0] for d in detections if d)
    align_ms = _ms_per(lambda: align_face(frames[0], det), 50)
    crops = np.stack([align_face(f, det) for f in frames[:batch]])

    model = paper_cnn()
    with torch.inference_mode():
        model.forward_features(preprocess_faces(model.spec, crops, framing="abaw112"))  # warm-up
        encode_ms = tuple(v / batch for v in _ms_per(
            lambda: model.forward_features(preprocess_faces(model.spec, crops, framing="abaw112")), 3))
    jpegs = sorted((data / "cropped_aligned").rglob("*.jpg"))[:200]
    read_ms = tuple(v / len(jpegs) for v in _ms_per(
        lambda: [preprocess_faces(model.spec, read_image_rgb(p), framing="abaw112") for p in jpegs], 1))
    return {"clip": clip.name, "decode_ms": decode_ms, "detect_ms_per_call": detect_ms, "align_ms": align_ms,
            "encode_ms": encode_ms, "crop_read_preprocess_ms": read_ms, "torch_threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1200, help="synthetic frames for part 1")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--detect-every", type=int, default=8)
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--json", type=Path, default=Path("/tmp/extract_throughput.json"))
    parser.add_argument("--breakdown-only", action="store_true", help="skip part 1 (keeps its JSON results)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="affectseq-bench-") as tmp:
        work = Path(tmp)
        data = make_dataset(work / "data", args.frames)
        if args.breakdown_only and args.json.is_file():
            previous = json.loads(args.json.read_text())
            runs, ratio = previous["runs"], previous["ratio_w2_w1"]
        else:
            runs = [throughput(data, work, w, args.batch_size) for w in (1, 2)]
            ratio = runs[1]["frames_per_sec"] / runs[0]["frames_per_sec"]
        cost = breakdown(args.clip, data)
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, 1-min load average {load:.1f} (shared)")
    print("\nextract (synthetic crops -> paper CNN features):" + (" [from the earlier run]" if args.breakdown_only
                                                                  else ""))
    for r in runs:
        print(f"  workers={r['workers']}: {r['frames']} frames in {r['seconds']:.1f} s = {r['frames_per_sec']:.1f} "
              "frames/s")
    print(f"  ratio workers=2 / workers=1: {ratio:.2f}")
    k = args.detect_every
    stages = {"decode": cost["decode_ms"], f"detect (1 call / {k} frames)": [v / k for v in cost["detect_ms_per_call"]],
              "align": cost["align_ms"], "encode (paper CNN, batched)": cost["encode_ms"]}
    wall_total, cpu_total = (sum(v[i] for v in stages.values()) for i in (0, 1))
    print(f"\nper-frame cost on {cost['clip']} (ms per frame; torch threads {cost['torch_threads']}):")
    print(f"  {'stage':32s} {'wall':>8s} {'CPU':>8s}  share of CPU")
    for name, (wall, cpu) in stages.items():
        print(f"  {name:32s} {wall:8.2f} {cpu:8.2f}  {cpu / cpu_total:6.1%}")
    print(f"  {'video total (predict path)':32s} {wall_total:8.2f} {cpu_total:8.2f}  "
          f"= {1e3 / cpu_total:.0f} frames per CPU-second")
    for name, key in (("detect, one call", "detect_ms_per_call"), ("crop JPEG read + preprocess", "crop_read_preprocess_ms")):
        print(f"  {name:32s} {cost[key][0]:8.2f} {cost[key][1]:8.2f}")
    args.json.write_text(json.dumps({"runs": runs, "ratio_w2_w1": ratio, "breakdown": cost, "detect_every": k,
                                     "load_avg_1min": load}, indent=2))
    print(f"\n-> {args.json}")


if __name__ == "__main__":
    main()
