"""Measure the box of an ABAW-style aligned video crop that shows what a FER2013/FER+ 48x48 face shows.

A model trained on FER crops meets video faces that ``affectseq.faces`` detected and
aligned (112-px ABAW-like template); ``affectseq.features.preprocess.FRAMING_CROPS``
cuts the matching sub-box out first. This script measures that box on faces the
default model may be *chosen* on (training or validation split, never test): each
face is upscaled 4x and pasted on a grey canvas, detected with MTCNN, aligned, and
the pasted image's corners are mapped into the aligned crop through the same affine
transform ``align_face`` uses. It prints the median box (fractions of the crop), the
interquartile spread and the share of faces found.

    python benchmarks/framing_calibration.py --data ../shared/data/ferplus.npz --split validation --n 400
"""

from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np

FACE_PX = 192  # 4x the 48-px FER faces
FRAME_W, FRAME_H = 480, 360


def corner_fractions(detector, face: np.ndarray, size: int = 112) -> np.ndarray | None:
    """(x0, y0, x1, y1) of the pasted face's square in the aligned crop, as fractions; None if no face."""
    from affectseq.faces.align import face_transform

    frame = np.full((FRAME_H, FRAME_W, 3), 128, np.uint8)
    x, y = (FRAME_W - FACE_PX) // 2, (FRAME_H - FACE_PX) // 2
    frame[y:y + FACE_PX, x:x + FACE_PX] = cv2.resize(face, (FACE_PX, FACE_PX), interpolation=cv2.INTER_CUBIC)
    detections = detector.detect(frame)
    if not detections:
        return None
    best = max(detections, key=lambda d: d.score)
    matrix = face_transform(best, size)  # frame -> crop pixels, 2x3
    corners = np.array([[x, y, 1.0], [x + FACE_PX, y + FACE_PX, 1.0]])
    (x0, y0), (x1, y1) = corners @ matrix.T
    return np.array([x0, y0, x1, y1]) / size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER2013 or FER+ .npz")
    parser.add_argument("--split", default="validation", choices=("train", "validation"),
                        help="faces to calibrate on (never test: the box is a design choice)")
    parser.add_argument("--n", type=int, default=400, help="faces to use")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from affectseq.faces import create_detector
    from affectseq.training.frame_data import load_frame_split

    frame_set, _ = load_frame_split(args.data, "expr", args.split)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(frame_set))
    detector = create_detector("mtcnn")
    boxes, tried = [], 0
    for i in order:
        face = frame_set.load_image(int(i))
        if face.std() <= 8:  # FER2013 holds a few blank images
            continue
        tried += 1
        box = corner_fractions(detector, face)
        if box is not None:
            boxes.append(box)
        if tried >= args.n:
            break
    found = np.array(boxes)
    median = np.median(found, axis=0)
    q1, q3 = np.percentile(found, [25, 75], axis=0)
    print(f"{args.data} {args.split}: faces found {len(found)}/{tried} ({len(found) / tried:.1%})")
    print("median box (x0, y0, x1, y1):", ", ".join(f"{v:.3f}" for v in median))
    print("interquartile range        :", ", ".join(f"{v:.3f}" for v in q3 - q1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
