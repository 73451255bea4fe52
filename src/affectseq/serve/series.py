"""Chart data for the page: a job's frames table as per-face time series (JSON-ready).

Every face gets one value per processed frame, ``None`` where that face is not
in the frame, so the chart shows gaps rather than lines drawn across them.
Long videos are thinned to at most ``max_points`` frames (every k-th) to keep
the JSON small; the CSV download always has every row.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from affectseq.predict.outputs import read_frames_table
from affectseq.predict.table import VA_COLUMNS

PROB_PREFIX = "prob_"
DEFAULT_MAX_POINTS = 5000


def _values(column: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else round(float(v), 4) for v in column]


def frames_series(frames_path: Path, max_points: int = DEFAULT_MAX_POINTS) -> dict[str, Any]:
    """``{"classes", "has_va", "time_sec", "faces": [{"face_id", "probs": {class: [...]}, "share", ...}]}``."""
    table = read_frames_table(frames_path)
    classes = [c[len(PROB_PREFIX):] for c in table.columns if c.startswith(PROB_PREFIX)]
    has_va = all(c in table.columns for c in VA_COLUMNS)
    frame_times = table.groupby("frame_idx", sort=True)["time_sec"].first()
    step = max(1, math.ceil(len(frame_times) / max_points))
    frame_times = frame_times.iloc[::step]
    faces = []
    rows = table[table["face_id"].notna()]
    for face_id, all_rows in rows.groupby("face_id", sort=True):
        # Shares over every frame, not the thinned ones; labels are "Happiness", columns "prob_happiness".
        labels = all_rows["label"].dropna().astype(str).str.lower()
        counts = labels.value_counts()
        face_rows = all_rows.drop_duplicates("frame_idx").set_index("frame_idx").reindex(frame_times.index)
        entry: dict[str, Any] = {
            "face_id": int(face_id),
            "frames": int(len(all_rows)),
            "probs": {c: _values(face_rows[PROB_PREFIX + c].to_numpy(float)) for c in classes},
            "share": {c: round(float(counts.get(c, 0)) / len(labels), 4) if len(labels) else 0.0 for c in classes},
        }
        if has_va:
            entry.update({dim: _values(face_rows[dim].to_numpy(float)) for dim in VA_COLUMNS})
        faces.append(entry)
    return {
        "classes": classes,
        "has_va": has_va,
        "step": step,
        "time_sec": [round(float(t), 4) for t in frame_times.to_numpy()],
        "faces": faces,
    }
