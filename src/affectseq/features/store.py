"""The feature store: per-frame CNN features of every video, written once, read as random windows.

Layout of a store directory::

    manifest.json                  format/version, encoder spec, checkpoint sha256, feature_dim, label_level,
                                   dtype, tasks, expr_classes, AU names, frame_model, one entry per video
    frame_model.safetensors        a copy of the frame model that made the features (manifest
                                   ``frame_model``: file name + sha256), so the store alone trains a
                                   sequence model that ``predict`` can run on raw video
    videos/<stem>.features.npy     float16 (n_frames, feature_dim); row = frame_idx; zeros where no feature
    videos/<stem>.labels.npy       structured (n_frames,) array, see LABEL_DTYPE
    videos/<stem>.json             the video's manifest entry; written last, it marks the video finished

Both arrays are opened with ``np.load(mmap_mode="r")``: a window read touches only
the pages it needs, and those pages are file-backed (they never count as the
process's anonymous memory), so reading stays constant-memory whatever the size
of the store. Writing lives in :mod:`affectseq.features.store_writer`.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from affectseq.errors import InputError
from affectseq.labels import AU_NAMES
from affectseq.utils.hashing import sha256_file

log = logging.getLogger(__name__)
STORE_FORMAT = "affectseq-feature-store"
STORE_VERSION = 1
MANIFEST_NAME = "manifest.json"
FRAME_MODEL_NAME = "frame_model.safetensors"
VIDEOS_DIR = "videos"
FEATURE_DTYPE = np.dtype(np.float16)
TASKS: tuple[str, ...] = ("expr", "va", "au")
LABEL_LEVELS: tuple[str, ...] = ("frame", "clip")  # per-frame labels, or one label per video (clip datasets)

# One record per frame. ``feature_valid``: the row holds a real feature (a face crop
# existed and decoded); ``has_face``: the dataset says a face is there (a crop that
# failed to decode has has_face=True, feature_valid=False). Labels use the
# canonical unannotated values (expr -1, va NaN, au -1) for tasks a video lacks.
LABEL_DTYPE = np.dtype(
    [
        ("feature_valid", "?"),
        ("has_face", "?"),
        ("expr", "i1"),
        ("va", "<f4", (2,)),
        ("au", "i1", (len(AU_NAMES),)),
    ]
)


def make_labels(
    n_frames: int,
    *,
    feature_valid: np.ndarray | None = None,
    has_face: np.ndarray | None = None,
    expr: np.ndarray | None = None,
    va: np.ndarray | None = None,
    au: np.ndarray | None = None,
) -> np.ndarray:
    """Build a ``LABEL_DTYPE`` array for one video; missing arrays mean "unannotated" / "no face"."""
    out = np.zeros(n_frames, dtype=LABEL_DTYPE)
    out["expr"] = -1
    out["va"] = np.nan
    out["au"] = -1
    for name, value in (("feature_valid", feature_valid), ("has_face", has_face), ("expr", expr),
                        ("va", va), ("au", au)):
        if value is None:
            continue
        value = np.asarray(value)
        if value.shape[0] != n_frames:
            raise ValueError(f"{name} has {value.shape[0]} rows, the video has {n_frames} frames")
        out[name] = value
    return out


def task_valid(labels: np.ndarray, task: str) -> np.ndarray:
    """Boolean (n,) mask of frames annotated for ``task`` in a ``LABEL_DTYPE`` array."""
    if task == "expr":
        return labels["expr"] >= 0
    if task == "va":
        return ~np.isnan(labels["va"]).any(axis=-1)
    if task == "au":
        return (labels["au"] >= 0).any(axis=-1)
    raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def video_stem(video_id: str) -> str:
    """A file-name-safe stem for ``video_id`` (ABAW ids are already safe and map to themselves)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", video_id)
    if stem != video_id:
        # Keep distinct ids distinct after substitution.
        import hashlib

        stem += "-" + hashlib.sha1(video_id.encode()).hexdigest()[:8]
    return stem


@dataclass(frozen=True)
class VideoEntry:
    """The manifest entry of one stored video."""

    video_id: str
    n_frames: int
    features_file: str  # relative to the store root
    labels_file: str
    splits: Mapping[str, str] = field(default_factory=dict)  # task -> split name ("train", "validation", ...)
    n_feature_frames: int = 0  # frames with a real feature row
    n_corrupt: int = 0  # crops that could not be decoded (masked; stores from before such videos failed)
    n_missing: int = 0  # frames listed with a face whose crop file was gone (masked as no face)
    fps: float | None = None  # frame rate of the video the rows come from (None: unknown)

    def to_dict(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "n_frames": self.n_frames,
            "features_file": self.features_file,
            "labels_file": self.labels_file,
            "splits": dict(self.splits),
            "n_feature_frames": self.n_feature_frames,
            "n_corrupt": self.n_corrupt,
            "n_missing": self.n_missing,
            "fps": self.fps,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "VideoEntry":
        return cls(
            video_id=str(data["video_id"]),
            n_frames=int(data["n_frames"]),
            features_file=str(data["features_file"]),
            labels_file=str(data["labels_file"]),
            splits={str(k): str(v) for k, v in dict(data.get("splits", {})).items()},
            n_feature_frames=int(data.get("n_feature_frames", 0)),
            n_corrupt=int(data.get("n_corrupt", 0)),
            n_missing=int(data.get("n_missing", 0)),
            fps=float(data["fps"]) if data.get("fps") else None,
        )


class FeatureStore:
    """Read-only access to a feature store directory (see the module docstring for the layout).

    Arrays are memory-mapped on first use and kept in an LRU of open maps
    (``max_open`` videos; each map holds a file descriptor, so the default stays
    well under the process's descriptor limit). A video evicted from the LRU is
    remapped from its cached ``.npy`` header (~0.1 ms rather than ~0.5 ms for
    ``np.load``). Instances pickle without their open maps (DataLoader workers reopen).
    """

    def __init__(self, root: str | Path, max_open: int | None = None):
        self.root = Path(root)
        manifest_path = self.root / MANIFEST_NAME
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(manifest_path, "no feature store here (manifest.json missing)") from None
        except json.JSONDecodeError as err:
            raise InputError(manifest_path, f"manifest is not valid JSON ({err.msg})", line=err.lineno) from None
        if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT:
            raise InputError(manifest_path, f"not an affectseq feature store manifest (format != {STORE_FORMAT!r})")
        if int(manifest.get("version", 0)) > STORE_VERSION:
            raise InputError(manifest_path, f"store version {manifest['version']} is newer than this affectseq reads")
        self.manifest: dict[str, Any] = manifest
        self.feature_dim = int(manifest["feature_dim"])
        self.tasks: tuple[str, ...] = tuple(manifest.get("tasks", ()))
        self.expr_classes: tuple[str, ...] = tuple(manifest.get("expr_classes", ()))
        # Stores written before clip datasets existed hold per-frame labels.
        self.label_level: str = str(manifest.get("label_level") or "frame")
        if self.label_level not in LABEL_LEVELS:
            raise InputError(manifest_path, f"label_level must be one of {', '.join(LABEL_LEVELS)}, "
                                            f"got {self.label_level!r}")
        self.encoder: dict[str, Any] = dict(manifest.get("encoder") or {})
        self.checkpoint_sha256: str | None = manifest.get("checkpoint_sha256")
        self.entries: dict[str, VideoEntry] = {
            vid: VideoEntry.from_dict(entry) for vid, entry in manifest.get("videos", {}).items()
        }
        self._incomplete: str | None = None
        self._checked = False  # the marker scan runs once per instance
        self._warned = False
        self.max_open = max_open if max_open is not None else _default_max_open()
        self._open: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._headers: dict[str, tuple[int, tuple[int, ...], np.dtype]] = {}  # rel path -> (offset, shape, dtype)

    # -- what is in the store -------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self.entries

    @property
    def total_frames(self) -> int:
        """Number of frame rows over all videos."""
        return sum(e.n_frames for e in self.entries.values())

    def splits(self, task: str) -> list[str]:
        """Split names that have at least one video for ``task``."""
        return sorted({e.splits[task] for e in self.entries.values() if task in e.splits})

    def video_ids(self, task: str | None = None, split: str | None = None) -> list[str]:
        """Video ids (manifest order), optionally only those in ``split`` of ``task``.

        With ``task="multi"`` (or ``None`` with a split) a video counts when any of its tasks is in ``split``.
        """
        out = []
        for vid, entry in self.entries.items():
            if split is None:
                if task in (None, "multi") or task in entry.splits:
                    out.append(vid)
            elif task in (None, "multi"):
                if split in entry.splits.values():
                    out.append(vid)
            elif entry.splits.get(task) == split:
                out.append(vid)
        return out

    def n_frames(self, video_id: str) -> int:
        return self._entry(video_id).n_frames

    def fps(self, video_ids: Sequence[str] | None = None) -> float | None:
        """The frame rate of the features of ``video_ids`` (all videos by default); None when unknown.

        Videos record their own rate; when they differ, the median over their frames is
        returned (and logged): a temporal model trained on them saw windows at about that rate.
        A video without a recorded rate makes the answer unknown.
        """
        entries = [self._entry(v) for v in (self.entries if video_ids is None else video_ids)]
        if not entries or any(e.fps is None for e in entries):
            return None
        rates = np.array([e.fps for e in entries], np.float64)
        if rates.max() > rates.min() * 1.01:
            order = np.argsort(rates)
            frames = np.cumsum(np.array([e.n_frames for e in entries], np.float64)[order])
            median = float(rates[order][np.searchsorted(frames, frames[-1] / 2)])
            log.warning("%s: videos at %.3g to %.3g fps; recording the median over frames, %.3g fps",
                        self.root, rates.min(), rates.max(), median)
            return median
        return float(np.median(rates))

    def frame_model_file(self) -> Path | None:
        """The frame model that made the features: the store's own copy, sha256-checked; None if it has none.

        Stores written before the copy existed name the original file (``checkpoint_path``):
        it is used while it still exists unchanged.
        """
        ref = self.manifest.get("frame_model")
        if ref is not None:
            path = self.root / FRAME_MODEL_NAME
            if not isinstance(ref, dict) or ref.get("file") != FRAME_MODEL_NAME or \
                    not isinstance(ref.get("sha256"), str):
                raise InputError(self.root / MANIFEST_NAME, f"frame_model: expected file {FRAME_MODEL_NAME} and its "
                                                            f"sha256, got {str(ref)[:80]}")
            if not path.is_file():
                raise InputError(path, "the store's frame model is missing; copy the whole store folder")
            if sha256_file(path) != ref["sha256"]:
                raise InputError(path, f"frame model differs from the manifest's sha256 ({ref['sha256'][:12]}...): "
                                       "the file was altered or replaced")
            return path
        legacy = self.manifest.get("checkpoint_path")
        if not legacy or not Path(legacy).is_file():
            return None
        if self.checkpoint_sha256 and sha256_file(legacy) != self.checkpoint_sha256:
            raise InputError(legacy, "frame model named by the store's manifest changed since the features were "
                                     "extracted (sha256 differs); re-extract the store")
        return Path(legacy)

    # -- is it whole? ---------------------------------------------------------
    def incomplete(self) -> str | None:
        """Why this store is not one finished extraction, or None when it is.

        The per-video markers (``videos/<stem>.json``) are what is committed; the
        manifest must list exactly those, and every video the extraction planned
        (``planned``, when recorded) must be among them. An interrupted or failed run,
        or a parallel run whose manifest was never rebuilt, fails this check.
        """
        if self._checked:
            return self._incomplete
        markers = {p.name[: -len(".json")] for p in (self.root / VIDEOS_DIR).glob("*.json")}
        listed = {video_stem(v) for v in self.entries}
        problems = []
        if markers - listed:
            problems.append(f"{len(markers - listed)} committed videos are missing from manifest.json "
                            f"(e.g. {sorted(markers - listed)[0]}; a parallel run stopped before rebuilding it)")
        if listed - markers:
            problems.append(f"{len(listed - markers)} videos in manifest.json have no commit marker in "
                            f"{VIDEOS_DIR}/ (e.g. {sorted(listed - markers)[0]})")
        planned = self.manifest.get("planned")
        if isinstance(planned, list):
            todo = sorted({video_stem(str(v)) for v in planned} - markers)
            if todo:
                problems.append(f"{len(todo)} of {len(planned)} planned videos are not extracted "
                                f"(e.g. {todo[0]}; the extraction was interrupted or failed)")
        self._incomplete, self._checked = "; ".join(problems) or None, True
        return self._incomplete

    def require_complete(self, allow_incomplete: bool = False, hint: str = "") -> None:
        """Raise ``InputError`` (one line) when :meth:`incomplete`; with ``allow_incomplete``, warn loudly instead.

        ``hint`` is appended to the message (how the caller's user can override).
        """
        problem = self.incomplete()
        if problem is None:
            return
        fix = "re-run the extraction (affectseq extract, same options) to finish it"
        if not allow_incomplete:
            raise InputError(self.root / MANIFEST_NAME, f"incomplete feature store: {problem}; {fix}"
                                                        f"{'; ' + hint if hint else ''}")
        if not self._warned:
            self._warned = True
            log.warning("USING AN INCOMPLETE FEATURE STORE %s (%d videos listed): %s", self.root, len(self), problem)

    # -- reading --------------------------------------------------------------
    def features(self, video_id: str) -> np.ndarray:
        """The video's float16 (n_frames, feature_dim) feature array, memory-mapped read-only."""
        return self._arrays(video_id)[0]

    def labels(self, video_id: str) -> np.ndarray:
        """The video's ``LABEL_DTYPE`` (n_frames,) array, memory-mapped read-only."""
        return self._arrays(video_id)[1]

    def read_window(
        self, video_id: str, start: int, stop: int, dtype: np.dtype | type = np.float32
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``start:stop`` of a video as (features copy in ``dtype``, labels copy); no padding is added.

        ``dtype=np.float16`` skips NumPy's slow half-to-float conversion (torch does it faster per batch).
        """
        feats, labels = self._arrays(video_id)
        return np.array(feats[start:stop], dtype=dtype), np.array(labels[start:stop])

    def _entry(self, video_id: str) -> VideoEntry:
        try:
            return self.entries[video_id]
        except KeyError:
            raise InputError(self.root / MANIFEST_NAME, f"video {video_id!r} is not in the store") from None

    def _arrays(self, video_id: str) -> tuple[np.ndarray, np.ndarray]:
        cached = self._open.get(video_id)
        if cached is not None:
            self._open.move_to_end(video_id)
            return cached
        entry = self._entry(video_id)
        feats = self._load(entry.features_file)
        labels = self._load(entry.labels_file)
        if feats.shape != (entry.n_frames, self.feature_dim) or labels.shape != (entry.n_frames,):
            raise InputError(
                self.root / entry.features_file,
                f"shape {feats.shape} / labels {labels.shape} do not match the manifest "
                f"({entry.n_frames} frames x {self.feature_dim})",
            )
        self._open[video_id] = (feats, labels)
        if len(self._open) > self.max_open:
            self._open.popitem(last=False)
        return feats, labels

    def _load(self, rel: str) -> np.ndarray:
        path = self.root / rel
        header = self._headers.get(rel)
        try:
            if header is not None:
                offset, shape, dtype = header
                return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            if isinstance(array, np.memmap) and array.flags.c_contiguous:
                self._headers[rel] = (int(array.offset), array.shape, array.dtype)
            return array
        except FileNotFoundError:
            raise InputError(path, "stored array missing (store incomplete? re-run extract to resume)") from None
        except ValueError as err:
            raise InputError(path, f"not a readable .npy array ({err})") from None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()  # memmaps are reopened lazily in each worker
        return state

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r}, videos={len(self)}, feature_dim={self.feature_dim})"


def _default_max_open() -> int:
    """Videos to keep mapped: 1024, fewer when the descriptor limit is low (two maps per video)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 64
    if soft == resource.RLIM_INFINITY:
        return 1024
    return int(max(16, min(1024, (soft - 128) // 4)))
