"""The negative control: a copy of a feature store with each video's frames shuffled in time.

Features, labels and masks of a frame move together, so every frame keeps its
own feature and label and a frame model is unaffected; only the order, i.e. the
temporal context a recurrent model could use, is destroyed. If a CNN + RNN still
beats the CNN alone on shuffled data, its gain was not temporal (it may come
from pooling frames of the same video, e.g. person-level context).

Row ``j`` of a shuffled video holds original frame ``perm[j]``; the permutations
are saved in ``time_permutations.npz`` (one int64 array per video id) so
predictions made on shuffled positions can be mapped back to the original
``frame_idx`` and compared frame by frame with the unshuffled rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectseq.errors import InputError
from affectseq.evaluation.predictions import Predictions
from affectseq.features.store import FeatureStore
from affectseq.features.store_writer import StoreWriter

PERMUTATIONS_FILE = "time_permutations.npz"


def shuffle_store_in_time(source: str | Path, dest: str | Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write ``dest``: ``source`` with every video's rows permuted (seeded per video); returns the permutations.

    Skips the work when ``dest`` already holds every video of ``source`` and the
    permutation file (a finished earlier run with the same seed).
    """
    src = FeatureStore(source)
    dest = Path(dest)
    perm_path = dest / PERMUTATIONS_FILE
    if perm_path.is_file():
        done = load_permutations(dest)
        if set(done) == set(src.entries) and (dest / "manifest.json").is_file():
            return done
    writer = StoreWriter(
        dest, feature_dim=src.feature_dim, encoder=src.encoder, checkpoint_sha256=src.checkpoint_sha256,
        checkpoint_path=src.frame_model_file(), tasks=src.tasks, expr_classes=src.expr_classes,
        source=f"{src.root} shuffled in time (seed {seed})",
    )
    perms: dict[str, np.ndarray] = {}
    for i, video_id in enumerate(src.video_ids()):
        entry = src.entries[video_id]
        # One generator per video (seed, position): the permutation of a video does not depend on the others.
        perm = np.random.default_rng([seed, i]).permutation(entry.n_frames).astype(np.int64)
        features = np.asarray(src.features(video_id))[perm]
        labels = np.array(src.labels(video_id))[perm]
        writer.write_video(video_id, features, labels, entry.splits, n_corrupt=entry.n_corrupt,
                           update_manifest=False)
        perms[video_id] = perm
    writer.rebuild_manifest()
    _save_permutations(perm_path, perms)
    return perms


def _save_permutations(path: Path, perms: dict[str, np.ndarray]) -> None:
    from affectseq.utils.atomic import atomic_path

    ids = sorted(perms)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, video_ids=np.array(ids, dtype=str),
                 **{f"perm_{k}": perms[v] for k, v in enumerate(ids)})


def load_permutations(store: str | Path) -> dict[str, np.ndarray]:
    """``video_id -> perm`` saved by :func:`shuffle_store_in_time` in ``store``."""
    path = Path(store) / PERMUTATIONS_FILE
    try:
        with np.load(path, allow_pickle=False) as npz:
            ids = [str(v) for v in npz["video_ids"]]
            return {vid: npz[f"perm_{k}"].astype(np.int64) for k, vid in enumerate(ids)}
    except (OSError, KeyError, ValueError) as err:
        raise InputError(path, f"not a readable permutation file ({err})") from None


def unshuffle_predictions(preds: Predictions, perms: dict[str, np.ndarray]) -> Predictions:
    """Predictions on shuffled rows with ``frame_idx`` mapped back to the original frame numbers."""
    frame_idx = preds.frame_idx.copy()
    for video_id in np.unique(preds.video_id):
        if video_id not in perms:
            raise InputError(PERMUTATIONS_FILE, f"no permutation for video {video_id!r}")
        rows = (preds.video_id == video_id) & (preds.frame_idx >= 0)  # -1: a whole clip, no frame to map
        frame_idx[rows] = perms[video_id][preds.frame_idx[rows]]
    return Predictions(
        video_id=preds.video_id, frame_idx=frame_idx, expr_true=preds.expr_true, expr_prob=preds.expr_prob,
        expr_classes=preds.expr_classes, va_true=preds.va_true, va_pred=preds.va_pred,
        au_true=preds.au_true, au_prob=preds.au_prob, label_level=preds.label_level,
    )
