"""Clip-trained sequence bundles in ``predict``: one label per clip (``summary.json`` ``clip_label``).

A bundle from ``train sequence`` on a clip store (header ``mode: "clip"``) was trained on
``frames`` (16) frames sampled uniformly over each clip, masked where there was no face
(:mod:`affectseq.sequences.clips`). ``predict`` does the same over each face track: the
track's span of processed frames is the clip, the same segment-centre positions are
taken (:func:`~affectseq.sequences.clips.clip_positions`), positions where the face is
missing are masked, and the model's one output is the track's clip prediction.

Per-frame rows (``frames.csv``) stay as for any model: each face row gets its track's clip
prediction (``offline``), or, in ``causal`` mode and live, the prediction over the track so
far (positions sampled over frames ``0..t``). ``summary.json`` adds ``clip_label`` and
``clip_probabilities`` from the clip's main track (the one with most faces), and
``clip_face_id``; a folder of clips also gets ``clips.csv`` (one row per clip).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from affectseq.predict.table import prob_column
from affectseq.sequences.clips import clip_positions

if TYPE_CHECKING:  # pandas (0.5-1 s) loads when a table is written, not for --help
    import pandas as pd

_PREDICT_KEYS = ("expr_prob", "va")
_CHUNK = 64  # clip samples per temporal-model batch (causal mode: one per frame)
# Causal mode and live: a frame's prediction samples the track's last CAUSAL_SPAN processed frames at most
# (about 40 s at 25 fps), so a live session's memory stays bounded however long it runs.
CAUSAL_SPAN = 1024


class ClipTemporal:
    """Temporal stage of a clip bundle: ``model`` (seq2one) over ``frames`` positions of each track."""

    def __init__(self, model: Any, frames: int, device: str = "cpu"):
        self.model = model
        self.frames = max(int(frames), 1)
        self.device = device

    def at_fps(self, fps: float | None) -> "ClipTemporal":
        """Unchanged: a clip is sampled by position over its span, whatever its frame rate."""
        return self

    def describe(self) -> dict[str, Any]:
        return {"kind": "clip model", "clip_frames": self.frames,
                "note": f"{self.frames} frames sampled uniformly over each face track (as in training); "
                        "each face row gets its track's clip prediction"}

    def run_track(self, outputs: dict[str, np.ndarray], time_sec: np.ndarray, step_idx: np.ndarray,
                  mode: str) -> dict[str, np.ndarray]:
        feats = np.asarray(outputs["features"], np.float32)
        pos = np.asarray(step_idx, np.int64) - int(step_idx[0])
        dense = np.zeros((int(pos[-1]) + 1, feats.shape[1]), np.float32)
        mask = np.zeros(len(dense), bool)
        dense[pos], mask[pos] = feats, True
        if mode == "offline":
            one = self.predict(*self.sample(dense, mask, len(dense)))
            return {k: np.repeat(v, len(pos), axis=0) for k, v in one.items()}
        parts: dict[str, list[np.ndarray]] = {}  # causal: row i sees the track up to its own frame
        for start in range(0, len(pos), _CHUNK):
            spans = [slice(max(0, p + 1 - CAUSAL_SPAN), p + 1) for p in pos[start:start + _CHUNK].tolist()]
            xs, ms = zip(*(self.sample(dense[cut], mask[cut], cut.stop - cut.start) for cut in spans))
            for key, value in self.predict(np.concatenate(xs), np.concatenate(ms)).items():
                parts.setdefault(key, []).append(value)
        return {k: np.concatenate(v) for k, v in parts.items()}

    def sample(self, dense: np.ndarray, mask: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
        """The (1, frames, D) sample and (1, frames) mask of the first ``span`` positions of a track."""
        positions = clip_positions(span, self.frames)
        return dense[positions][None], mask[positions][None]

    def predict(self, x: np.ndarray, m: np.ndarray) -> dict[str, np.ndarray]:
        """``expr_prob`` / ``va`` of a batch of clip samples (N, frames, D) with masks (N, frames)."""
        import torch

        from affectseq.features.heads import head_outputs

        with torch.no_grad():
            raw = self.model(torch.from_numpy(x).to(self.device), torch.from_numpy(m).to(self.device))
        return {k: v.cpu().numpy().astype(np.float32) for k, v in head_outputs(raw).items() if k in _PREDICT_KEYS}

    def stream(self) -> "_ClipStream":
        """One track, frame by frame (live): the causal rows of :meth:`run_track`."""
        return _ClipStream(self)


class _ClipStream:
    """A track's features so far; each step predicts from the positions sampled over them."""

    def __init__(self, stage: ClipTemporal):
        self.stage = stage
        self.features: list[np.ndarray | None] = []

    def step(self, time_sec: float, outputs: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        if outputs is None:
            if self.features:  # gaps before the track's first face are not part of it
                self.features.append(None)
                del self.features[:-CAUSAL_SPAN]
            return {}
        self.features.append(np.asarray(outputs["features"], np.float32))
        del self.features[:-CAUSAL_SPAN]  # bounded memory on a live source (the same span as run_track's)
        dim = len(self.features[-1])
        dense = np.stack([f if f is not None else np.zeros(dim, np.float32) for f in self.features])
        mask = np.array([f is not None for f in self.features])
        return {k: v[0] for k, v in self.stage.predict(*self.stage.sample(dense, mask, len(dense))).items()}

    @property
    def idle(self) -> bool:
        return False  # the whole track so far shapes every later prediction


def clip_summary(table: pd.DataFrame, classes: Sequence[str]) -> dict[str, Any]:
    """``summary.json``'s clip fields from a clip bundle's frames table.

    The clip's track is the face track with most rows (ties: the lowest ``face_id``), the
    person a clip dataset's label is about; its last row holds the prediction over the
    whole track (offline: every row holds it). No face: ``clip_label`` None.
    """
    faces = table[table["face_id"].notna()]
    columns = [prob_column(c) for c in classes]
    if not len(faces) or not columns:
        return {"clip_label": None, "clip_probabilities": None, "clip_face_id": None}
    counts = faces.groupby("face_id").size()
    face_id = counts[counts == counts.max()].index.min()
    last = faces[faces["face_id"] == face_id].iloc[-1]
    prob = last[columns].to_numpy(np.float64)
    if not np.isfinite(prob).all():
        return {"clip_label": None, "clip_probabilities": None, "clip_face_id": int(face_id)}
    return {"clip_label": str(classes[int(np.argmax(prob))]),
            "clip_probabilities": {str(c): round(float(p), 6) for c, p in zip(classes, prob)},
            "clip_face_id": int(face_id)}


CLIPS_CSV = "clips.csv"


def write_clips_csv(out_root: str | Path, outcomes: Sequence[Any]) -> Path | None:
    """``OUT/clips.csv``: one row per clip of a batch predicted with a clip bundle; None for other models.

    Rows follow the batch's input order and come from each finished (or up-to-date) video's
    ``summary.json``: ``video``, ``output`` (its folder), ``clip_label``, ``clip_face_id``,
    ``frames``, ``frames_with_face`` and ``prob_<class>`` per class. Failed videos are listed
    with an empty label and their ``error``, so the file always has one row per input.
    """
    from affectseq.predict.outputs import read_summary
    from affectseq.utils.atomic import write_text_atomic

    rows: list[dict[str, Any]] = []
    classes: list[str] = []
    for outcome in outcomes:
        summary = read_summary(outcome.out_dir) if outcome.status != "failed" else None
        row: dict[str, Any] = {"video": str(outcome.video), "output": str(outcome.out_dir), "clip_label": None,
                               "clip_face_id": None, "frames": None, "frames_with_face": None,
                               "error": outcome.message if outcome.status == "failed" else ""}
        if summary is not None:
            if "clip_label" not in summary:
                return None  # not a clip model: no clips.csv
            row.update(clip_label=summary["clip_label"], clip_face_id=summary["clip_face_id"],
                       frames=summary["frames_processed"], frames_with_face=summary["frames_with_face"])
            for name, p in (summary["clip_probabilities"] or {}).items():
                classes += [name] if name not in classes else []
                row[prob_column(name)] = p
        rows.append(row)
    if not any(r["clip_label"] is not None or r["frames"] is not None for r in rows):
        return None
    columns = ["video", "output", "clip_label", "clip_face_id", "frames", "frames_with_face",
               *[prob_column(c) for c in classes], "error"]
    path = Path(out_root) / CLIPS_CSV
    import pandas as pd

    write_text_atomic(path, pd.DataFrame(rows, columns=columns).to_csv(index=False, float_format="%.6f"))
    return path
