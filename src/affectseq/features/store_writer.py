"""Writing feature stores: one video at a time, atomically, resumable, safe for parallel workers.

A video is committed in three atomic steps: its features file, its labels file,
then its entry ``videos/<stem>.json``. The entry is the commit marker: a writer
killed at any point leaves either a finished video or none (at most an orphan
array that the next run overwrites, and hidden ``.*.tmp`` files that reopening the
store deletes), never a half-written file. ``manifest.json``
is the aggregate of the entries; it is rewritten atomically after each video by
a single writer, or once by :meth:`StoreWriter.rebuild_manifest` after parallel
workers (one process per video shard, e.g. Ray tasks) have written their videos
with ``update_manifest=False``.

The markers, not the manifest, say what is committed: reopening a store scans them,
so a run killed at any point (local, DataLoader workers or Ray tasks, whose manifest
was never rebuilt) resumes exactly. ``planned`` in the manifest lists the videos an
extraction set out to write (:meth:`StoreWriter.set_planned`), so readers can tell a
finished store from an interrupted one (:meth:`FeatureStore.incomplete`).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from affectseq.errors import InputError
from affectseq.labels import AU_NAMES, expr_classes as canonical_expr_classes
from affectseq.utils.atomic import atomic_path, write_json_atomic
from affectseq.utils.fsguard import real_dir
from affectseq.features.store import (
    FEATURE_DTYPE,
    FRAME_MODEL_NAME,
    LABEL_DTYPE,
    LABEL_LEVELS,
    MANIFEST_NAME,
    STORE_FORMAT,
    STORE_VERSION,
    VIDEOS_DIR,
    VideoEntry,
    make_labels,
    video_stem,
)

log = logging.getLogger(__name__)

# Header fields that must agree when an existing store is resumed.
_IDENTITY_KEYS = ("feature_dim", "checkpoint_sha256", "encoder")


class StoreWriter:
    """Create (or resume) a feature store at ``root``.

    ``encoder`` is the frame encoder's spec as a dict (H4's ``EncoderSpec``, see
    :func:`spec_to_dict`); ``checkpoint_sha256`` ties the store to the exact
    checkpoint that made it. Reopening a store made by a different encoder or
    checkpoint raises ``InputError`` rather than mixing features.

    ``checkpoint_path``, the frame-model file that made the features, is copied into the
    store (``frame_model.safetensors``, its sha256 in the manifest's ``frame_model``), so
    the store alone is enough to train a sequence model ``predict`` can run, wherever the
    frame run folder went. ``video_fps`` gives each video's frame rate (recorded in its entry).

    Reopening also deletes the temporaries a killed writer left in ``videos/``
    (``remove_stale=False`` keeps them). So open a store in the one process that
    coordinates the writing (parallel workers get this object pickled, which
    does not run ``__init__``), never while another job writes to it.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        feature_dim: int,
        encoder: Mapping[str, Any] | None = None,
        checkpoint_sha256: str | None = None,
        checkpoint_path: str | Path | None = None,
        tasks: Sequence[str] = (),
        expr_classes: Sequence[str] = (),
        label_level: str = "frame",
        source: str | None = None,
        remove_stale: bool = True,
        video_fps: Mapping[str, float | None] | None = None,
    ):
        self.root = Path(root)
        self.video_fps = dict(video_fps or {})
        if checkpoint_path is not None and Path(checkpoint_path).is_file():
            checkpoint_sha256 = _checked_sha256(Path(checkpoint_path), checkpoint_sha256)
        self.header: dict[str, Any] = {
            "format": STORE_FORMAT,
            "version": STORE_VERSION,
            "feature_dim": int(feature_dim),
            "dtype": FEATURE_DTYPE.name,
            "encoder": _plain(dict(encoder or {})),
            "checkpoint_sha256": checkpoint_sha256,
            "checkpoint_path": str(checkpoint_path) if checkpoint_path else None,
            "tasks": list(tasks),
            "expr_classes": list(expr_classes),
            # "clip": one label per video (a clip dataset); "frame": per-frame labels. `train sequence`
            # defaults to clip-level training on a clip store (affectseq.sequences.clips).
            "label_level": _checked_label_level(label_level),
            "au_names": list(AU_NAMES),
            "source": source,
        }
        resuming = (self.root / VIDEOS_DIR).is_dir()
        real_dir(self.root / VIDEOS_DIR, "feature store folder")  # a planted link would take our writes elsewhere
        manifest_path = self.root / MANIFEST_NAME
        self.entries: dict[str, dict[str, Any]] = {}
        if manifest_path.exists():
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
            if isinstance(old.get("planned"), list):
                self.header["planned"] = old["planned"]  # reopening must not forget what the store is for
            for key in _IDENTITY_KEYS:
                if old.get(key) != self.header[key]:
                    raise InputError(
                        manifest_path,
                        f"existing store has a different {key} ({old.get(key)!r:.80}); "
                        "write to a new directory or delete this one",
                    )
        if resuming and remove_stale:
            # A writer killed with SIGKILL cannot clean up: its hidden temporaries (up to a whole video's
            # features) are never read but would stay on disk for good.
            removed = self.remove_stale_temporaries()
            if removed:
                log.info("%s: removed %d temporary files left by an interrupted run", self.root, removed)
        if checkpoint_path is not None and Path(checkpoint_path).is_file():
            self.header["frame_model"] = self._embed_frame_model(Path(checkpoint_path), checkpoint_sha256)
        self.entries = self._scan_entries()
        self._write_manifest()

    def _embed_frame_model(self, source: Path, sha256: str) -> dict[str, str]:
        """Copy the frame model into the store (once: a resumed store keeps its checked copy)."""
        import shutil

        from affectseq.utils.hashing import sha256_file

        target = self.root / FRAME_MODEL_NAME
        if not (target.is_file() and sha256_file(target) == sha256):
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        return {"file": FRAME_MODEL_NAME, "sha256": sha256}

    # -- state ----------------------------------------------------------------
    def is_done(self, video_id: str) -> bool:
        """True when the video is committed (entry present and both arrays exist)."""
        entry = self.entries.get(video_id)
        if entry is None:
            return False
        return (self.root / entry["features_file"]).exists() and (self.root / entry["labels_file"]).exists()

    def _scan_entries(self) -> dict[str, dict[str, Any]]:
        entries = {}
        for path in sorted((self.root / VIDEOS_DIR).glob("*.json")):
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue  # cannot happen with atomic writes; treat as unfinished
            entries[entry["video_id"]] = entry
        return entries

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files a killed writer left in ``videos/`` (and of the frame-model copy); returns how many.

        Only call this when no other writer is working on the store (parallel
        workers' in-flight temporaries look the same).
        """
        # Files (older affectseq) or private folders (utils.atomic); never a link or what it points to.
        stale = [p for p in (self.root / VIDEOS_DIR).glob(".*.tmp") if not p.is_symlink()]
        stale += [p for p in self.root.glob(f".{FRAME_MODEL_NAME}.*.tmp") if not p.is_symlink()]
        for path in stale:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_file():
                path.unlink(missing_ok=True)
        return len(stale)

    def set_planned(self, video_ids: Sequence[str]) -> None:
        """Record the videos this store is meant to hold (every video of the extraction's plan).

        Written to the manifest at once, so a run interrupted before its end leaves a
        store that readers know is incomplete.
        """
        self.header["planned"] = sorted(set(video_ids))
        self._write_manifest()

    def rebuild_manifest(self) -> None:
        """Re-read every committed entry from disk (after parallel writers) and rewrite manifest.json."""
        self.entries = self._scan_entries()
        self._write_manifest()

    def _write_manifest(self) -> None:
        write_json_atomic(self.root / MANIFEST_NAME, {**self.header, "videos": self.entries})

    # -- writing --------------------------------------------------------------
    def write_video(
        self,
        video_id: str,
        features: np.ndarray,
        labels: np.ndarray,
        splits: Mapping[str, str],
        n_corrupt: int = 0,
        update_manifest: bool = True,
        n_missing: int = 0,
        fps: float | None = None,
    ) -> VideoEntry:
        """Commit one video: ``features`` (n_frames, feature_dim), ``labels`` a ``LABEL_DTYPE`` array.

        ``n_missing``: frames the dataset lists with a face whose crop file was gone (masked).
        ``fps``: the video's frame rate (default: from the writer's ``video_fps``).
        """
        n_frames = int(labels.shape[0])
        if features.shape != (n_frames, self.header["feature_dim"]):
            raise ValueError(f"features {features.shape} != ({n_frames}, {self.header['feature_dim']})")

        def fill(out: np.ndarray) -> None:
            out[:] = features

        return self.write_video_streamed(video_id, n_frames, fill, labels, splits, n_corrupt, update_manifest,
                                         n_missing=n_missing, fps=fps)

    def write_video_streamed(
        self,
        video_id: str,
        n_frames: int,
        fill: Callable[[np.ndarray], None],
        labels: np.ndarray,
        splits: Mapping[str, str],
        n_corrupt: int = 0,
        update_manifest: bool = True,
        n_missing: int = 0,
        fps: float | None = None,
    ) -> VideoEntry:
        """Commit one video whose features ``fill(out)`` writes into a (n_frames, D) float16 memmap.

        For very long videos and random-feature stores: the features never exist in anonymous memory.
        An exception inside ``fill`` leaves nothing behind.
        """
        if labels.dtype != LABEL_DTYPE or labels.shape != (n_frames,):
            raise ValueError(f"labels must be a LABEL_DTYPE array of shape ({n_frames},)")
        stem = video_stem(video_id)
        feat_rel = f"{VIDEOS_DIR}/{stem}.features.npy"
        label_rel = f"{VIDEOS_DIR}/{stem}.labels.npy"
        with atomic_path(self.root / feat_rel) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=FEATURE_DTYPE,
                                            shape=(n_frames, self.header["feature_dim"]))
            fill(out)
            out.flush()
            del out
        with atomic_path(self.root / label_rel) as tmp, open(tmp, "wb") as fh:
            np.save(fh, labels, allow_pickle=False)
        entry = VideoEntry(
            video_id=video_id,
            n_frames=n_frames,
            features_file=feat_rel,
            labels_file=label_rel,
            splits=dict(splits),
            n_feature_frames=int(labels["feature_valid"].sum()),
            n_corrupt=int(n_corrupt),
            n_missing=int(n_missing),
            fps=float(fps) if fps else self.video_fps.get(video_id),
        )
        write_json_atomic(self.root / VIDEOS_DIR / f"{stem}.json", entry.to_dict())
        self.entries[video_id] = entry.to_dict()
        if update_manifest:
            self._write_manifest()
        return entry


def _checked_label_level(level: str) -> str:
    if level not in LABEL_LEVELS:
        raise ValueError(f"label_level must be one of {LABEL_LEVELS}, got {level!r}")
    return level


def _checked_sha256(path: Path, expected: str | None) -> str:
    """The sha256 of the frame-model file; ``InputError`` when the caller's ``expected`` hash disagrees."""
    from affectseq.utils.hashing import sha256_file

    found = sha256_file(path)
    if expected is not None and found != expected:
        raise InputError(path, f"frame model sha256 {found[:12]}... is not the expected {expected[:12]}...")
    return found


def spec_to_dict(spec: Any) -> dict[str, Any]:
    """An encoder spec (dataclass, object with ``to_dict``, or mapping) as plain JSON values."""
    import dataclasses

    if spec is None:
        return {}
    if hasattr(spec, "to_dict"):
        return _plain(spec.to_dict())
    if dataclasses.is_dataclass(spec):
        return _plain(dataclasses.asdict(spec))
    return _plain(dict(spec))


def _plain(value: Any) -> Any:
    # JSON round trip turns tuples into lists; do it up front so resumed headers compare equal.
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def write_random_store(
    root: str | Path,
    n_rows: int,
    feature_dim: int = 300,
    video_frames: int = 5000,
    seed: int = 0,
    face_rate: float = 0.95,
    val_fraction: float = 0.2,
    chunk_rows: int = 65536,
    tasks: Sequence[str] = ("expr", "va"),
) -> Path:
    """Write a store of random features and labels directly (benchmarks at Aff-Wild2 scale: 3M x 300).

    Features are written chunk by chunk into each video's memmap, so memory stays
    flat however many rows are asked for. Videos have ``video_frames`` rows (the
    last one the remainder); ``face_rate`` of frames have a feature, in runs.
    """
    rng = np.random.default_rng(seed)
    classes = canonical_expr_classes(7)
    writer = StoreWriter(root, feature_dim=feature_dim, encoder={"name": "random"}, tasks=tasks,
                         expr_classes=classes if "expr" in tasks else (), source="random")
    n_videos = -(-n_rows // video_frames)
    for v in range(n_videos):
        n = min(video_frames, n_rows - v * video_frames)
        # Gaps come in runs (a face lost for a while), like real videos.
        valid = np.repeat(rng.random(-(-n // 25)) < face_rate, 25)[:n]
        labels = make_labels(
            n,
            feature_valid=valid,
            has_face=valid,
            expr=rng.integers(0, len(classes), n) if "expr" in tasks else None,
            va=rng.uniform(-1, 1, (n, 2)).astype(np.float32) if "va" in tasks else None,
        )

        def fill(out: np.ndarray, n: int = n, valid: np.ndarray = valid) -> None:
            for start in range(0, n, chunk_rows):
                stop = min(n, start + chunk_rows)
                block = rng.standard_normal((stop - start, feature_dim), dtype=np.float32)
                block[~valid[start:stop]] = 0.0
                out[start:stop] = block

        split = "validation" if rng.random() < val_fraction else "train"
        writer.write_video_streamed(f"rand{v:05d}", n, fill, labels, {t: split for t in tasks},
                                    update_manifest=False)
    writer.rebuild_manifest()
    return Path(root)

