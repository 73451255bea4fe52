"""FER faces through the video path (``affectseq.experiments.through_video``): direct vs through-predict accuracy.

Compares candidate framing boxes for video faces on faces the model may be chosen on
(training or validation, never test):

    python benchmarks/fer_through_video.py --data ../shared/data/ferplus.npz --split validation --n 400 \\
        --box 0.045,0.10,0.945,1.0 --box 0.083,0.146,0.916,0.994
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER2013 or FER+ .npz")
    parser.add_argument("--split", default="validation", choices=("train", "validation"))
    parser.add_argument("--model", default="default")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--box", action="append", default=[], help="x0,y0,x1,y1 (repeatable); none: the shipped box")
    parser.add_argument("--background", default=str(Path(__file__).resolve().parents[2] / "shared" / "clips"
                                                    / "free-mountain-vector-01.jpg"))
    args = parser.parse_args(argv)

    import cv2

    from affectseq.experiments.through_video import faces_through_video
    from affectseq.training.frame_data import load_frame_split

    frame_set, _ = load_frame_split(args.data, "expr", args.split)
    rng = np.random.default_rng(0)
    picked = [int(i) for i in rng.permutation(len(frame_set))[:args.n * 2]
              if frame_set.load_image(int(i)).std() > 8][:args.n]  # FER2013 holds a few blank images
    faces = np.stack([frame_set.load_image(i) for i in picked])
    labels = frame_set.expr[picked]
    background = cv2.cvtColor(cv2.imread(args.background), cv2.COLOR_BGR2RGB)
    boxes = [tuple(float(v) for v in b.split(",")) for b in args.box] or [None]
    for box in boxes:
        with tempfile.TemporaryDirectory() as tmp:
            result = faces_through_video(args.model, faces, labels, background, tmp, box=box)
        print(f"box {box or 'shipped'}: {result.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
