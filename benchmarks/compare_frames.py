"""Compare two ``predict`` output folders clip by clip: are the ``frames.csv`` files the same?

Rows must match on ``frame_idx``/``face_id``; labels must be identical; prints the largest
difference of the probabilities (target: <= 1e-4), of box coordinates and of det_score.
Used for the "outputs unchanged" check of the ONNX detector (docs/results.md):

    python benchmarks/compare_frames.py runs/before runs/after
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _num(text: str) -> float | None:
    return float(text) if text not in ("", "nan", "NaN") else None


def compare(a: Path, b: Path) -> tuple[int, int, float, float, float]:
    """(rows, label mismatches, max |prob diff|, max |box diff| px, max |det_score diff|) of two frames.csv."""
    ra, rb = _rows(a), _rows(b)
    if len(ra) != len(rb):
        raise SystemExit(f"{a} vs {b}: {len(ra)} vs {len(rb)} rows")
    labels = 0
    diffs = {"prob": 0.0, "box": 0.0, "det": 0.0}
    for x, y in zip(ra, rb):
        if (x["frame_idx"], x.get("face_id")) != (y["frame_idx"], y.get("face_id")):
            raise SystemExit(f"{a}: row frame {x['frame_idx']} face {x.get('face_id')} vs {y.get('face_id')}")
        labels += x.get("label") != y.get("label")
        for key in x:
            kind = ("prob" if key.startswith("prob_") or key in ("valence", "arousal")
                    else "box" if key in ("x1", "y1", "x2", "y2") else "det" if key == "det_score" else None)
            if kind is None:
                continue
            u, v = _num(x[key]), _num(y[key])
            if (u is None) != (v is None):
                raise SystemExit(f"{a}: frame {x['frame_idx']} {key}: {x[key]!r} vs {y[key]!r}")
            if u is not None:
                diffs[kind] = max(diffs[kind], abs(u - v))
    return len(ra), labels, diffs["prob"], diffs["box"], diffs["det"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest probability difference allowed")
    args = parser.parse_args(argv)
    ok = True
    for clip in sorted(p.parent.name for p in args.before.glob("*/frames.csv")):
        rows, labels, prob, box, det = compare(args.before / clip / "frames.csv", args.after / clip / "frames.csv")
        good = labels == 0 and prob <= args.tolerance
        ok &= good
        print(f"{clip:24s} rows {rows:4d}  label mismatches {labels}  max |dprob| {prob:.2e}  "
              f"max |dbox| {box:.2e} px  max |ddet_score| {det:.2e}  {'ok' if good else 'DIFFERENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
