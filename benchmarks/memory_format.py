"""Memory format of frame batches: contiguous (NCHW) vs channels-last (NHWC) input on this CPU.

``train frames`` and frame evaluation hand the network its batch in channels-last
layout, which lets oneDNN choose its faster convolution kernels; the weights stay
in their default layout (so checkpoints are unchanged). This script measures what
that choice buys, per encoder and input size:

* training: images/s of forward + cross-entropy backward + AdamW step, batch 64
  (what one step of ``train frames`` costs, augmentation excluded);
* inference: frames/s of ``model.eval()`` under ``torch.inference_mode()`` at the
  batch sizes ``predict`` and ``extract`` use.

The two layouts alternate ``--repeat`` times on the same model and inputs and the
median is reported, so background load hits both alike. Prints one table with the
NHWC/NCHW ratio measured in this run.

    python benchmarks/memory_format.py [--threads 2] [--seconds 3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from affectseq.features.encoders import create_encoder
from affectseq.features.frame_model import FrameModel

ENCODERS = {
    # label: create_encoder(...) keyword arguments
    "torchvision/mobilenet_v2 64 gray (the default model's network until session 3)": dict(
        name="torchvision/mobilenet_v2", input_size=64, grayscale=True),
    "torchvision/mobilenet_v2 80 gray (the default model's network)": dict(
        name="torchvision/mobilenet_v2", input_size=80, grayscale=True),
    "timm resnet18 64": dict(name="resnet18", input_size=64),
    "paper_cnn 96 gray": dict(name="paper_cnn"),
}
LAYOUTS = {"NCHW": torch.contiguous_format, "NHWC": torch.channels_last}


def items_per_sec(step: Callable[[], int], seconds: float) -> float:
    """Items/s of ``step()`` (which returns how many items it processed) after two warm-up calls."""
    step()
    step()
    n_items, start = 0, time.perf_counter()
    while True:
        n_items += step()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n_items / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--infer-batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for label in args.encoders:
        torch.manual_seed(0)
        model = FrameModel(create_encoder(**ENCODERS[label]), tasks=["expr"])
        spec = model.spec
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def inputs(batch_size: int, layout: torch.memory_format) -> torch.Tensor:
            x = torch.randn(batch_size, spec.in_chans, spec.input_size, spec.input_size)
            return x.contiguous(memory_format=layout)

        def train_step(x: torch.Tensor, y: torch.Tensor) -> Callable[[], int]:
            def step() -> int:
                loss = torch.nn.functional.cross_entropy(model(x)["expr"], y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                return len(x)
            return step

        def infer_step(x: torch.Tensor) -> Callable[[], int]:
            def step() -> int:
                with torch.inference_mode():
                    torch.softmax(model(x)["expr"], 1)
                return len(x)
            return step

        cases: list[tuple[str, dict[str, Callable[[], int]]]] = []
        labels = torch.randint(0, 7, (args.train_batch,))
        cases.append((f"train, batch {args.train_batch}",
                      {name: train_step(inputs(args.train_batch, fmt), labels) for name, fmt in LAYOUTS.items()}))
        for batch_size in args.infer_batches:
            cases.append((f"inference, batch {batch_size}",
                          {name: infer_step(inputs(batch_size, fmt)) for name, fmt in LAYOUTS.items()}))
        for case, steps in cases:
            model.train(case.startswith("train"))
            speeds: dict[str, list[float]] = {name: [] for name in LAYOUTS}
            for _ in range(args.repeat):
                for name, step in steps.items():
                    speeds[name].append(items_per_sec(step, args.seconds))
            nchw, nhwc = (statistics.median(speeds[k]) for k in LAYOUTS)
            rows.append((label, case, nchw, nhwc))
            print(f"{label:<64} {case:<20} NCHW {nchw:8.1f}  NHWC {nhwc:8.1f} /s  ratio {nhwc / nchw:4.2f}",
                  flush=True)

    print(f"\nmedian of {args.repeat} alternating measurements of {args.seconds:g} s each; "
          f"{args.threads} threads; torch {torch.__version__}\n")
    print("| encoder | measurement | NCHW items/s | NHWC items/s | NHWC / NCHW |")
    print("|---|---|---|---|---|")
    for label, case, nchw, nhwc in rows:
        print(f"| {label} | {case} | {nchw:.0f} | {nhwc:.0f} | {nhwc / nchw:.2f} |")


if __name__ == "__main__":
    main()
