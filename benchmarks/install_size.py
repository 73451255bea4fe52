"""Installed size of affectseq's dependencies: the full install against the set ``predict``/``serve``/``live`` need.

Sums the files each installed distribution lists (its RECORD), over the dependency closure
of a set of requirements (extras not followed; what is not installed is reported, not
counted). The predict-only set is what a default ``predict`` run, ``serve`` and ``live``
import (no torch, torchvision, timm, mtcnn/joblib/lz4, onnx, scikit-learn: the detector and
the default model run from the shipped ONNX files).

    python benchmarks/install_size.py
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import sys

FULL = "affectseq"          # the current install: affectseq's base dependencies
PREDICT = ("numpy", "av", "opencv-python-headless", "onnxruntime", "safetensors", "pandas", "matplotlib",
           "rich", "pyyaml")
SERVE = ("fastapi", "starlette", "uvicorn", "python-multipart", "pyarrow")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


DISTS = {_norm(d.metadata["Name"]): d for d in md.distributions()}


def dist_bytes(name: str) -> int:
    total = 0
    for f in DISTS[name].files or []:
        try:
            total += os.path.getsize(f.locate())
        except OSError:
            pass
    return total


def requirements(name: str) -> list[str]:
    """Names of ``name``'s unconditional requirements (no extras)."""
    out = []
    for req in DISTS[name].requires or []:
        if ";" in req and "extra" in req.split(";", 1)[1]:
            continue
        out.append(_norm(re.split(r"[ <>=!~\[;(]", req.strip(), maxsplit=1)[0]))
    return out


def closure(roots: tuple[str, ...] | list[str]) -> tuple[set[str], set[str]]:
    """(installed distributions in the closure, names not installed)."""
    seen, missing, stack = set(), set(), [_norm(r) for r in roots]
    while stack:
        name = stack.pop()
        if name in seen or name in missing:
            continue
        if name not in DISTS:
            missing.add(name)
            continue
        seen.add(name)
        stack.extend(requirements(name))
    return seen, missing


def main() -> int:
    full, _ = closure(requirements(FULL))
    predict, missing = closure(PREDICT)
    serve, missing_serve = closure(PREDICT + SERVE)
    sizes = {name: dist_bytes(name) for name in full | serve}
    mb = lambda names: sum(sizes[n] for n in names) / 1e6  # noqa: E731
    print(f"current install (affectseq's base dependencies, closure): {len(full)} distributions, {mb(full):,.0f} MB")
    print(f"predict + live (no torch/torchvision/timm):              {len(predict)} distributions, {mb(predict):,.0f} MB"
          f"  ({mb(predict) / mb(full):.2f} of it)")
    print(f"predict + live + serve extra:                            {len(serve)} distributions, {mb(serve):,.0f} MB")
    print("largest of what predict does not need:")
    for name in sorted(full - serve, key=lambda n: -sizes[n])[:12]:
        print(f"  {name:28s} {sizes[name] / 1e6:8.1f} MB")
    if missing | missing_serve:
        print(f"not installed here (not counted): {', '.join(sorted(missing | missing_serve))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
