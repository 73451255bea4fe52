"""Model files written before the one header schema (format version 1): read, never written.

Version-1 frame models (the shipped ``default`` and ``fer2013-v1`` weights among them) kept the
encoder under ``spec``; version-1 sequence bundles kept ``epoch``/``val_score``/
``store_checkpoint_sha256`` at the top level (now in ``meta``), an encoder that could be any
store's mapping (now null unless a full spec), and ``frame_checkpoint`` ``{sha256, path,
embedded, header}`` with the frame model's tensors as ``frame.*`` (now ``frame_model`` with the
file name only). :func:`upgrade_v1` maps such a header onto version 2, which is then checked
like any other (:func:`affectseq.modelfile.schema.check_header`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affectseq.errors import InputError
from affectseq.modelfile.schema import FRAME_FORMAT, SCHEMA_VERSION, VA_RANGE, HeaderChecker, face_of

_V1_FRAME_FIELDS = {"format", "version", "spec", "tasks", "expr_classes", "num_aus", "dropout", "meta"}
_V1_SEQUENCE_FIELDS = {"format", "version", "input_dim", "heads", "model_config", "mode", "window", "tasks",
                       "expr_classes", "encoder", "store_checkpoint_sha256", "meta", "epoch", "val_score",
                       "frame_checkpoint"}
_V1_ENCODER_FIELDS = {"name", "input_size", "in_chans", "grayscale", "mean", "std", "feature_dim"}


def upgrade_v1(check: HeaderChecker, header: dict[str, Any], fmt: str) -> dict[str, Any]:
    """A version-1 header mapped onto version 2 (renamed and derived fields; nothing is trusted yet)."""
    known = _V1_FRAME_FIELDS if fmt == FRAME_FORMAT else _V1_SEQUENCE_FIELDS
    unknown = sorted(set(header) - known)
    if unknown:
        raise InputError(check.path, f"invalid {check.what} header: unknown fields {unknown}")
    meta = check.mapping(header, "meta", default={})
    common = {"format": fmt, "version": SCHEMA_VERSION, "affectseq_version": None,
              "va_range": list(VA_RANGE), "meta": meta}
    if fmt == FRAME_FORMAT:
        spec = header.get("spec")
        return {**common, "encoder": spec, "face": face_of(spec) if isinstance(spec, dict) else None,
                "tasks": header.get("tasks"), "expr_classes": header.get("expr_classes", []),
                "num_aus": header.get("num_aus") or 0, "dropout": header.get("dropout", 0.0)}
    config = check.mapping(header, "model_config")
    heads = check.mapping(header, "heads")
    encoder = check.mapping(header, "encoder", default={})
    if not _V1_ENCODER_FIELDS <= set(encoder):  # a store of external features named its source only
        meta, encoder = {**meta, "store_encoder": encoder}, None
    extra = {k: header[k] for k in ("epoch", "val_score", "store_checkpoint_sha256") if k in header}
    return {**common, "meta": {**meta, **extra}, "encoder": encoder, "face": face_of(encoder),
            "tasks": header.get("tasks", sorted(heads)), "expr_classes": header.get("expr_classes", []),
            "input_dim": header.get("input_dim"), "heads": heads, "model_config": config,
            "mode": header.get("mode", config.get("mode", "seq2one")), "window": header.get("window", 100),
            "fps": None, "window_sec": None, "frame_model": _upgrade_frame_ref(check, header.get("frame_checkpoint"))}


def _upgrade_frame_ref(check: HeaderChecker, ref: Any) -> Any:
    if ref is None:
        return None
    if not isinstance(ref, dict):
        raise check.fail("frame_checkpoint", "expected a JSON object")
    inner = check.nested("frame_checkpoint")
    path = inner.string(ref, "path", max_len=4096)
    out = {"sha256": ref.get("sha256"), "name": Path(path.replace("\\", "/")).name,
           "embedded": ref.get("embedded", False)}
    if out["embedded"] is True:
        out["v1_header"] = ref.get("header")
    return out
