"""Per-video output files: ``frames.csv`` (or Parquet) and ``summary.json``, and the run fingerprint.

Writers take a target directory that the caller makes atomic (see
:mod:`affectseq.predict.batch`); each file here is also written atomically so a
crash never leaves a half-written table behind.

``summary.json`` records a **fingerprint** of what made it (:func:`run_fingerprint`):
the source file (resolved path, size, mtime, a hash of its first and last MiB), the
model (id, checksum, temporal stage) and every option that changes the outputs.
A rerun skips a video only when the fingerprint matches in full, and a folder is
"ours" for a video only when its fingerprint names that video's path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from stat import S_ISREG
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping

from affectseq.errors import ConfigError, InputError
from affectseq.predict.table import VA_COLUMNS, prob_column
from affectseq.utils.atomic import atomic_path, write_json_atomic
from affectseq.utils.fsguard import not_a_file
from affectseq.utils.naming import display_name

if TYPE_CHECKING:  # pandas (0.5-1 s) loads when a table is built, not for --help
    import pandas as pd

TableFormat = Literal["csv", "parquet"]
FRAMES_FILES: dict[str, str] = {"csv": "frames.csv", "parquet": "frames.parquet"}
SUMMARY_FILE = "summary.json"
FINGERPRINT_VERSION = 1
SAMPLE_BYTES = 1 << 20  # hash the first and last MiB: cheap for any size, catches re-encodes and edits
TIMELINE_FILE = "timeline.png"
OVERLAY_FILE = "overlay.mp4"


def write_frames_table(table: pd.DataFrame, out_dir: str | Path, fmt: str = "csv") -> Path:
    """Write the frames table as ``frames.csv`` (probabilities to 5 decimals) or ``frames.parquet``."""
    if fmt not in FRAMES_FILES:
        raise ConfigError(f"unknown table format {fmt!r}; choose one of {', '.join(FRAMES_FILES)}")
    path = Path(out_dir) / FRAMES_FILES[fmt]
    with atomic_path(path) as tmp:
        if fmt == "csv":
            # Empty cells (not "nan") for faceless frames; enough digits for probabilities and pixels.
            table.to_csv(tmp, index=False, float_format="%.5g", na_rep="")
        else:
            try:
                table.to_parquet(tmp, index=False)
            except ImportError:
                raise ConfigError(
                    "--format parquet needs pyarrow: pip install 'affectseq[parquet]'"
                ) from None
    return path


def read_frames_table(path: str | Path) -> pd.DataFrame:
    """Read a ``frames.csv``/``frames.parquet`` back with the dtypes :func:`build_frames_table` gives."""
    import pandas as pd

    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    table = pd.read_csv(path, dtype={"face_id": "Int64", "label": "object"}, keep_default_na=True)
    return table


def _json_float(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 6)


def video_metadata(info: Any, path: str | Path) -> dict[str, Any]:
    """Plain-JSON metadata of a probed video (``affectseq.io.video.VideoInfo`` or any dataclass/mapping)."""
    if dataclasses.is_dataclass(info):
        meta = dataclasses.asdict(info)
    elif isinstance(info, Mapping):
        meta = dict(info)
    else:
        meta = {k: v for k, v in vars(info).items() if not k.startswith("_")}
    meta = {k: (str(v) if isinstance(v, Path) else v) for k, v in meta.items()}
    meta["path"] = str(path)
    return meta


def summarize(
    table: pd.DataFrame,
    classes: list[str],
    has_va: bool,
    *,
    video: Mapping[str, Any],
    model: Mapping[str, Any],
    processing: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``summary.json`` content for one video's frames table.

    Time shares count face rows (frame x face) labelled with each class, out of
    the face rows with a prediction; the dominant expression is the class with
    the largest share (``None`` when no face was found or none was predicted).
    Valence/arousal statistics appear only for models with a VA head.
    """
    face_rows = table[table["face_id"].notna()]
    frames_total = int(table["frame_idx"].nunique())
    frames_with_face = int(face_rows["frame_idx"].nunique())
    counts = face_rows["label"].value_counts()
    n_face_rows = int(len(face_rows))
    n_labelled = int(counts.sum())  # face rows with a prediction (see frames_table: some may have none)
    share = {c: (round(float(counts.get(c, 0)) / n_labelled, 6) if n_labelled else 0.0) for c in classes}
    dominant = max(share, key=share.get) if n_labelled else None  # type: ignore[arg-type]
    mean_prob = {
        c: _json_float(float(face_rows[prob_column(c)].mean())) if n_face_rows else None for c in classes
    }
    per_face = []
    for face_id, rows in face_rows.groupby("face_id", sort=True):
        face_counts = rows["label"].value_counts()
        per_face.append({
            "face_id": int(face_id),
            "frames": int(len(rows)),
            "first_sec": round(float(rows["time_sec"].min()), 3),
            "last_sec": round(float(rows["time_sec"].max()), 3),
            "dominant_expression": str(face_counts.idxmax()) if len(face_counts) else None,
        })
    summary: dict[str, Any] = {
        "video": dict(video),
        "model": dict(model),
        "frames_processed": frames_total,
        "frames_with_face": frames_with_face,
        "frames_without_face": frames_total - frames_with_face,
        "faces": per_face,
        "dominant_expression": dominant,
        "time_share": share,
        "mean_probability": mean_prob,
    }
    if has_va:
        summary["valence_arousal"] = {
            dim: {
                "mean": _json_float(float(face_rows[dim].mean())) if n_face_rows else None,
                "std": _json_float(float(face_rows[dim].std(ddof=0))) if n_face_rows else None,
            }
            for dim in VA_COLUMNS
        }
    summary["processing"] = dict(processing)
    return summary


def write_summary(summary: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``summary.json`` atomically, last; its ``files`` lists every file of the folder (ours: a redo
    replaces exactly these, :func:`files_written`)."""
    path = Path(out_dir) / SUMMARY_FILE
    files = sorted({p.name for p in Path(out_dir).iterdir() if not p.name.startswith(".")} | {SUMMARY_FILE})
    write_json_atomic(path, {**summary, "files": files})
    return path


OWN_FILES = frozenset({*FRAMES_FILES.values(), SUMMARY_FILE, TIMELINE_FILE, OVERLAY_FILE})


def files_written(out_dir: str | os.PathLike[str]) -> set[str]:
    """The file names affectseq wrote into an output folder: its ``summary.json``'s ``files`` (older
    summaries: the names affectseq has always written). Any other file there is the user's."""
    files = (read_summary(out_dir) or {}).get("files")
    if isinstance(files, list) and all(isinstance(name, str) for name in files):
        return set(files)
    return set(OWN_FILES)


def format_summary(summary: Mapping[str, Any]) -> str:
    """A few human-readable lines about one video's result (used by ``predict`` and ``demo``)."""
    video = summary.get("video", {})
    proc = summary.get("processing", {})
    lines = [
        f"{display_name(Path(str(video.get('path', '?'))).name)}: {summary['frames_processed']} frames, "
        f"{summary['frames_with_face']} with a face, {len(summary.get('faces', []))} face track(s), "
        f"{proc.get('fps', float('nan')):.1f} frames/s",
    ]
    temporal = proc.get("temporal") or {}
    if temporal.get("kind") == "sequence model":  # how its window fits this video's frame rate
        lines.append(f"  temporal model: {temporal.get('note')}")
    if summary.get("dominant_expression") is None:
        lines.append("  no face found: every frame is listed without predictions")
        return "\n".join(lines)
    if summary.get("clip_label") is not None:  # a clip-trained bundle: one label for the clip
        top_p = summary["clip_probabilities"][summary["clip_label"]]
        lines.append(f"  clip label: {summary['clip_label']} (p={top_p:.2f}, face {summary['clip_face_id']})")
    shares = sorted(summary["time_share"].items(), key=lambda kv: -kv[1])
    top = ", ".join(f"{name} {100 * share:.0f}%" for name, share in shares[:4] if share > 0)
    lines.append(f"  dominant expression: {summary['dominant_expression']} (time share: {top})")
    va = summary.get("valence_arousal")
    if va:
        lines.append(
            "  valence mean {:+.2f} (std {:.2f}), arousal mean {:+.2f} (std {:.2f})".format(
                va["valence"]["mean"], va["valence"]["std"], va["arousal"]["mean"], va["arousal"]["std"]
            )
        )
    return "\n".join(lines)


def source_fingerprint(video: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Identity of a source file: resolved path, size, mtime (ns) and SHA-256 of its first and last MiB.

    ``None`` when the file cannot be read (the prediction itself then reports why). InputError, with
    nothing opened, for a FIFO, device, socket or folder: opening a FIFO would block for ever.
    """
    path = Path(video).resolve()
    try:
        stat = path.stat()
    except OSError:
        return None
    if not S_ISREG(stat.st_mode):
        raise InputError(video, not_a_file(stat.st_mode, "video"))
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            digest.update(fh.read(SAMPLE_BYTES))
            if stat.st_size > 2 * SAMPLE_BYTES:
                fh.seek(-SAMPLE_BYTES, os.SEEK_END)
            digest.update(fh.read(SAMPLE_BYTES))
    except OSError:
        return None
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "sample_sha256": digest.hexdigest()}


def run_fingerprint(
    source: Mapping[str, Any] | None,
    model: Mapping[str, Any],
    options: Mapping[str, Any],
    outputs: Mapping[str, Any],
) -> dict[str, Any]:
    """The fingerprint stored in ``summary.json``: source, model (id, sha256, kind, temporal), options, outputs.

    ``model`` is a ``ModelInfo.to_dict()``; only the fields that decide the outputs
    are kept (backend and device are left out: they give the same results).
    """
    return {
        "version": FINGERPRINT_VERSION,
        "source": dict(source) if source else None,
        "model": {k: model.get(k) for k in ("id", "sha256", "kind", "temporal")},
        "options": dict(options),
        "outputs": dict(outputs),
    }


def fingerprint_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """What differs between a stored and a new fingerprint, as short phrases (empty: a full match)."""
    if not old or old.get("version") != new.get("version"):
        return ["made by an older affectseq (no fingerprint)"]
    changes = []
    old_src, new_src = old.get("source") or {}, new.get("source") or {}
    if not new_src or old_src != new_src:
        changed = [k for k in ("path", "size", "mtime_ns", "sample_sha256") if old_src.get(k) != new_src.get(k)]
        changes.append(f"source file changed ({', '.join(changed) or 'unreadable'})")
    for part in ("model", "options", "outputs"):
        before, after = old.get(part) or {}, new.get(part) or {}
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                changes.append(f"{part} {key}: {before.get(key)!r} -> {after.get(key)!r}")
    return changes


def read_summary(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``summary.json`` of an output folder, or ``None`` when missing or unreadable."""
    try:
        data = json.loads((Path(out_dir) / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def summary_source(summary: Mapping[str, Any] | None) -> str | None:
    """The resolved source path a ``summary.json`` was made from (older summaries: their video path)."""
    if not summary:
        return None
    source = (summary.get("fingerprint") or {}).get("source") or {}
    if source.get("path"):
        return str(source["path"])
    legacy = (summary.get("video") or {}).get("path")
    return str(Path(legacy).resolve()) if isinstance(legacy, str) and legacy else None
