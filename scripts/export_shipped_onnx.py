"""Export the ONNX files shipped in ``src/affectseq/weights``: MTCNN's three networks and the default frame model.

Maintainers only; one command, re-run whenever a shipped weights file changes (a new
default model, another ``mtcnn`` release):

    python scripts/export_shipped_onnx.py

Writes ``mtcnn_{pnet,rnet,onet}.onnx`` (from the installed ``mtcnn==1.0.0`` package's
``.lz4`` weights) and ``<default model stem>.onnx`` beside the default model's
``.safetensors``. Each file records the sha256 of the weights it came from;
``tests/test_shipped_onnx.py`` checks that against the shipped files and that the ONNX
outputs equal torch's. ``predict`` uses a shipped graph only when the recorded sha256 is
its checkpoint's, so a stale file is never used (it is re-exported into the cache instead).
Needs torch, ``onnx`` and ``mtcnn`` (the training install).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "src" / "affectseq" / "weights"),
                        help="folder to write into (default: the package's weights folder)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))  # this checkout's code, whatever is installed

    from affectseq.faces.mtcnn_onnx import export_mtcnn_onnx
    from affectseq.features.shipped import default_model_path
    from affectseq.models.factory import load_frame_model
    from affectseq.predict.onnx_backend import export_onnx
    from affectseq.utils.onnx_files import SOURCE_SHA256, file_metadata

    out = Path(args.out)
    written = export_mtcnn_onnx(out)
    checkpoint = default_model_path()
    frame_onnx = out / checkpoint.with_suffix(".onnx").name
    export_onnx(load_frame_model(checkpoint), frame_onnx, output="heads", source=checkpoint)
    written.append(frame_onnx)
    for path in written:
        print(f"{path}  {path.stat().st_size / 1e6:.2f} MB  from sha256 {file_metadata(path)[SOURCE_SHA256][:16]}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
