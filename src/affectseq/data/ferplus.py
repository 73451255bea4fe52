"""FER+ (Barsoum et al., ICMI 2016): the FER2013 images relabelled by 10 crowd taggers each.

The archive (as packed in ``../shared/data/ferplus.npz``) holds ``images`` uint8
(N, 48, 48), ``votes`` int (N, 10) over :data:`VOTE_COLUMNS`, and ``split`` 0 train
(FER2013 Training) / 1 validation (PublicTest) / 2 test (PrivateTest).

Labels, the two protocols FER+ papers use:

* **majority** (``expr``): the emotion with the most votes; images whose most-voted
  column is ``unknown`` or ``NF`` (strictly more votes than every emotion) are
  left out; ties between emotions go to the first in FER+'s column order
  (``numpy.argmax``). This is the usual "FER+ majority, 8 classes" test protocol.
* **vote distribution** (``expr_dist``): the votes over the 8 emotions, normalised
  to sum to 1 — the soft target of FER+'s "cross-entropy" training mode.

Classes follow :data:`affectseq.labels.EXPR_CLASSES_FERPLUS` (the seven basic
expressions in the canonical order, then ``Contempt``). With ``num_classes=7``
images whose majority is contempt are left out and the contempt votes dropped
from the distribution (the FER+ 7-class protocol).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from affectseq import labels
from affectseq.data.frames import ArrayFrameSet
from affectseq.data.images import npz_has_arrays, read_npz_arrays
from affectseq.errors import InputError

VOTE_COLUMNS: tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                                 "contempt", "unknown", "NF")
FERPLUS_SPLITS: dict[str, int] = {"train": 0, "validation": 1, "test": 2}
FERPLUS_KEYS: tuple[str, ...] = ("images", "votes", "split")
_N_EMOTIONS = 8  # the first 8 vote columns are emotions; unknown and NF follow


def _canonical_order() -> np.ndarray:
    """Vote-column index of each class of EXPR_CLASSES_FERPLUS (FER+ order -> canonical order)."""
    by_name = {("Contempt" if c == "contempt" else labels.canonical_expr_name(c)): i
               for i, c in enumerate(VOTE_COLUMNS[:_N_EMOTIONS])}
    return np.array([by_name[c] for c in labels.EXPR_CLASSES_FERPLUS], dtype=np.int64)


def is_ferplus_npz(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an .npz archive holding FER+'s ``images``/``votes``/``split`` arrays."""
    return npz_has_arrays(path, FERPLUS_KEYS)


def read_ferplus_votes(npz_path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(votes int64 (N, 10), split uint8 (N,))`` without decompressing the images."""
    arrays = _read(npz_path, keys=("votes", "split"))
    return arrays["votes"].astype(np.int64), arrays["split"]


def majority_labels(votes: np.ndarray, num_classes: int = 8) -> np.ndarray:
    """Majority class per image in the canonical FER+ space; -1 where unknown/NF wins (or contempt, for 7)."""
    votes = np.asarray(votes)
    top = votes.argmax(axis=1)  # FER+ column; ties go to the earlier column (emotions before unknown/NF)
    to_canonical = np.full(len(VOTE_COLUMNS), -1, dtype=np.int64)
    to_canonical[_canonical_order()] = np.arange(len(labels.EXPR_CLASSES_FERPLUS))
    out = to_canonical[top]
    if num_classes == 7:
        out[out == labels.EXPR_CLASSES_FERPLUS.index("Contempt")] = -1
    return out


def vote_distribution(votes: np.ndarray, num_classes: int = 8) -> np.ndarray:
    """Votes over the emotions (canonical order), normalised per row; all-zero rows stay zero."""
    emotion_votes = np.asarray(votes)[:, _canonical_order()[:num_classes]].astype(np.float32)
    total = emotion_votes.sum(axis=1, keepdims=True)
    return np.divide(emotion_votes, total, out=np.zeros_like(emotion_votes), where=total > 0)


def load_ferplus(npz_path: str | os.PathLike[str], split: str, num_classes: int = 8) -> ArrayFrameSet:
    """One split of FER+ as an :class:`ArrayFrameSet` with majority ``expr`` and soft ``expr_dist``.

    Only images with a majority emotion are kept (see the module docstring);
    ``item_names`` keeps FER+'s file names so reports can point at images.
    """
    if split not in FERPLUS_SPLITS:
        raise InputError(npz_path, f"unknown FER+ split {split!r}; choose one of {', '.join(FERPLUS_SPLITS)}")
    if num_classes not in (7, 8):
        raise ValueError(f"FER+ has 7 or 8 emotion classes, got {num_classes}")
    arrays = _read(npz_path)
    in_split = arrays["split"] == FERPLUS_SPLITS[split]
    votes = arrays["votes"][in_split]
    expr = majority_labels(votes, num_classes)
    keep = expr >= 0
    classes = labels.EXPR_CLASSES_FERPLUS[:num_classes]
    return ArrayFrameSet(
        name=f"ferplus/{split}",
        images=np.ascontiguousarray(arrays["images"][in_split][keep]),
        expr_classes=classes,
        expr=expr[keep],
        item_names=arrays["names"][in_split][keep] if "names" in arrays else None,
        expr_dist=vote_distribution(votes[keep], num_classes),
    )


def _read(npz_path: str | os.PathLike[str], keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    path = Path(npz_path)
    arrays = read_npz_arrays(path, FERPLUS_KEYS, "FER+", keys)
    votes = arrays["votes"]
    if votes.ndim != 2 or votes.shape[1] != len(VOTE_COLUMNS):
        raise InputError(path, f"votes must be (N, {len(VOTE_COLUMNS)}), got {votes.shape}")
    if (votes < 0).any():
        raise InputError(path, "votes must be non-negative counts")
    for key, value in arrays.items():
        if len(value) != len(votes):
            raise InputError(path, f"array {key!r} has {len(value)} rows, 'votes' has {len(votes)}")
    if "images" in arrays and (arrays["images"].dtype != np.uint8 or arrays["images"].ndim != 3):
        raise InputError(path, f"images must be uint8 (N, H, W), got {arrays['images'].dtype} {arrays['images'].shape}")
    return arrays
