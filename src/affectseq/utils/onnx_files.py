"""ONNX files affectseq ships or caches: one CPU session recipe and the provenance they record.

Every ONNX file affectseq writes records, in the model's metadata, the sha256 of the
weights file it was exported from (:data:`SOURCE_SHA256`) and what that file is
(:data:`SOURCE`), so a shipped or cached export is used only for the weights it came
from (``tests/test_shipped_onnx.py`` checks the shipped ones). Reading the metadata
needs ONNX Runtime only; writing it needs the ``onnx`` package (export time only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

SOURCE_SHA256 = "affectseq.source_sha256"
SOURCE = "affectseq.source"


def cpu_session(path: str | os.PathLike[str], threads: int = 1) -> Any:
    """An ONNX Runtime CPU session of ``path``.

    One intra-op thread by default: predict's stages already run in parallel (decoding, the
    detector, the frame model), and without spinning, which burns shared cores while idle.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def session_metadata(session: Any) -> dict[str, str]:
    """The custom metadata (``metadata_props``) of a session's model."""
    return dict(session.get_modelmeta().custom_metadata_map)


def stamp_metadata(path: str | os.PathLike[str], metadata: Mapping[str, str]) -> None:
    """Add ``metadata`` to the ONNX file at ``path`` in place (keys replaced if present)."""
    import onnx

    from affectseq.utils.atomic import atomic_path

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    props.update({str(k): str(v) for k, v in metadata.items()})
    del model.metadata_props[:]
    for key in sorted(props):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, props[key]
    with atomic_path(Path(path)) as tmp:
        onnx.save(model, str(tmp))


def file_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of an ONNX file (through ONNX Runtime, like :func:`session_metadata`)."""
    return session_metadata(cpu_session(path))
