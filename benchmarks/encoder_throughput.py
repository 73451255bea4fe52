"""Frame-encoder throughput: frames/s of torch vs ONNX Runtime on this CPU.

For each encoder (the shipped default model with its weights, ``paper_cnn`` and two
timm backbones with random weights and an EXPR head: speed does not depend on the
weights) the full frame model (encoder + head + softmax, what ``predict`` runs
per face; ``extract`` runs the same minus the head) is timed on random
preprocessed inputs of its own contract (size, channels):

* torch: ``model.eval()`` under ``torch.inference_mode()``;
* ONNX Runtime: the same model exported by the ``predict`` backend's exporter,
  ``CPUExecutionProvider``, spinning off (as ``predict`` runs it).

Both run with the same thread count and batch size; the measurements alternate
between the two backends ``--repeat`` times and the median is reported, so
background load hits both alike. Prints one table and the ONNX/torch ratio per
encoder measured in this run, and the largest probability difference between the
two backends (meaningful for the trained default model; random-weight networks
produce extreme logits, so their difference only flags gross export errors).

    python benchmarks/encoder_throughput.py [--batch-sizes 1 32] [--threads 1 2] [--seconds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from affectseq.features.encoders import create_encoder
from affectseq.models.factory import load_frame_model
from affectseq.features.frame_model import FrameModel
from affectseq.predict.onnx_backend import export_onnx  # the exporter predict uses

DEFAULT_MODEL = "default model (shipped weights)"
ENCODERS = {
    # name: create_encoder(...) keyword arguments (None: the shipped default model)
    DEFAULT_MODEL: None,
    "paper_cnn 96 gray": dict(name="paper_cnn"),
    "timm mobilenetv3_large_100 64": dict(name="mobilenetv3_large_100", input_size=64),
    "timm resnet18 64": dict(name="resnet18", input_size=64),
}


def frames_per_sec(run_batch, batch: np.ndarray, seconds: float) -> float:
    """Frames/s of ``run_batch(batch)`` over at least ``seconds`` (after two warm-up calls)."""
    run_batch(batch)
    run_batch(batch)
    n_frames, start = 0, time.perf_counter()
    while True:
        run_batch(batch)
        n_frames += len(batch)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n_frames / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    args = parser.parse_args()

    import onnxruntime as ort

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.encoders:
            torch.manual_seed(0)
            if ENCODERS[label] is None:
                model = load_frame_model("default").eval()
            else:
                model = FrameModel(create_encoder(**ENCODERS[label]), tasks=["expr"]).eval()
            spec = model.spec
            onnx_path = Path(tmp) / "model.onnx"
            export_onnx(model, onnx_path)
            for threads in args.threads:
                torch.set_num_threads(threads)
                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

                def run_torch(x: np.ndarray) -> None:
                    with torch.inference_mode():
                        torch.softmax(model(torch.from_numpy(x))["expr"], 1)

                def run_onnx(x: np.ndarray) -> None:
                    session.run(None, {"input": x})

                for batch_size in args.batch_sizes:
                    x = np.random.default_rng(0).standard_normal(
                        (batch_size, spec.in_chans, spec.input_size, spec.input_size)).astype(np.float32)
                    with torch.inference_mode():
                        ref = torch.softmax(model(torch.from_numpy(x))["expr"], 1).numpy()
                    max_diff = float(np.abs(session.run(None, {"input": x})[0] - ref).max())
                    fps = {"torch": [], "onnx": []}
                    for _ in range(args.repeat):
                        fps["torch"].append(frames_per_sec(run_torch, x, args.seconds))
                        fps["onnx"].append(frames_per_sec(run_onnx, x, args.seconds))
                    torch_fps, onnx_fps = (statistics.median(fps[k]) for k in ("torch", "onnx"))
                    rows.append((label, threads, batch_size, torch_fps, onnx_fps, max_diff))
                    print(f"{label:<66} threads {threads} batch {batch_size:>3}: torch {torch_fps:8.1f} "
                          f"ONNX {onnx_fps:8.1f} frames/s  ratio {onnx_fps / torch_fps:4.2f}  "
                          f"max |prob diff| {max_diff:.1e}", flush=True)

    print(f"\nmedian of {args.repeat} alternating measurements of {args.seconds:g} s each; "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}\n")
    print("| encoder | threads | batch | torch frames/s | ONNX Runtime frames/s | ONNX / torch |")
    print("|---|---|---|---|---|---|")
    for label, threads, batch_size, torch_fps, onnx_fps, _ in rows:
        print(f"| {label} | {threads} | {batch_size} | {torch_fps:.0f} | {onnx_fps:.0f} | "
              f"{onnx_fps / torch_fps:.2f} |")


if __name__ == "__main__":
    main()
