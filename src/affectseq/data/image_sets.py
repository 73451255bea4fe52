"""The still-image layouts of the registry: FER2013 and FER+ ``.npz`` archives, class-per-folder image trees.

Each is a small object over the loaders of :mod:`affectseq.data.images` and :mod:`affectseq.data.ferplus`
with the registry's image surface: ``layout``, ``label_level`` (``"image"``), ``framing`` (how its faces
are cropped, see :data:`affectseq.features.encoders.FRAMINGS`), ``grayscale``, ``splits()``,
``frame_set(task, split)`` and ``inspect()`` (the ``data inspect`` report's ``tasks`` and ``warnings``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from affectseq.data import ferplus, images
from affectseq.data.frames import FrameSet
from affectseq.data.stats import image_split_stats, warnings_report


def is_fer2013(path: Path) -> bool:
    """A FER2013 ``.npz`` (images, labels, split)."""
    return path.is_file() and images.is_fer2013_npz(path)


def is_ferplus(path: Path) -> bool:
    """A FER+ ``.npz`` (images, votes, split)."""
    return path.is_file() and ferplus.is_ferplus_npz(path)


def is_image_folder(path: Path) -> bool:
    """A class-per-folder image tree (``root/<class>/`` or ``root/<split>/<class>/``)."""
    return path.is_dir() and bool(images.image_folder_splits(path))


class _ImageSet:
    layout = ""
    label_level = "image"
    framing = "as_given"
    grayscale = False

    def __init__(self, path: str | os.PathLike[str], strict: bool = False):
        self.root = Path(path)
        self.strict = strict

    def splits(self) -> tuple[str, ...]:
        raise NotImplementedError

    def frame_set(self, task: str, split: str) -> FrameSet:
        raise NotImplementedError

    def inspect(self) -> dict[str, Any]:
        raise NotImplementedError


class Fer2013Set(_ImageSet):
    """FER2013 as packed in ``../shared`` (48x48 gray faces; splits train/validation/test)."""

    layout = "fer2013"
    framing = "fer2013"
    grayscale = True

    def splits(self) -> tuple[str, ...]:
        return tuple(images.FER2013_SPLITS)

    def frame_set(self, task: str, split: str) -> FrameSet:
        return images.load_fer2013(self.root, split)

    def inspect(self) -> dict[str, Any]:
        from affectseq.labels import EXPR_CLASSES_7

        y, split = images.fer2013_label_arrays(self.root)
        splits = {name: image_split_stats(y[split == code], EXPR_CLASSES_7)
                  for name, code in images.FER2013_SPLITS.items()}
        return {"tasks": {"EXPR": splits}, "warnings": warnings_report([], 0)}


class FerPlusSet(_ImageSet):
    """FER+ (the FER2013 pixels, relabelled by 10 taggers): majority labels and vote distributions."""

    layout = "ferplus"
    framing = "fer2013"  # the FER2013 pixels: same framing, gray
    grayscale = True

    def splits(self) -> tuple[str, ...]:
        return tuple(ferplus.FERPLUS_SPLITS)

    def frame_set(self, task: str, split: str) -> FrameSet:
        return ferplus.load_ferplus(self.root, split)

    def inspect(self) -> dict[str, Any]:
        """Majority-vote class statistics per split, plus how many images unknown/NF won and vote agreement."""
        from affectseq.labels import EXPR_CLASSES_FERPLUS

        votes, split = ferplus.read_ferplus_votes(self.root)
        majority = ferplus.majority_labels(votes)
        splits: dict[str, Any] = {}
        for name, code in ferplus.FERPLUS_SPLITS.items():
            rows = split == code
            stats = image_split_stats(majority[rows], EXPR_CLASSES_FERPLUS)
            stats["unknown_or_nf_majority"] = int((majority[rows] < 0).sum())
            # Share of an image's votes that went to its majority class: how much the 10 taggers agreed.
            top_share = votes[rows].max(axis=1) / np.maximum(votes[rows].sum(axis=1), 1)
            stats["mean_majority_vote_share"] = round(float(top_share.mean()), 4) if rows.any() else None
            splits[name] = stats
        return {"tasks": {"EXPR": splits}, "warnings": warnings_report([], 0)}


class ImageFolderSet(_ImageSet):
    """A class-per-folder image tree (AffectNet/RAF-DB style); each split folder is one split."""

    layout = "image_folder"

    def __init__(self, path: str | os.PathLike[str], strict: bool = False):
        super().__init__(path, strict)
        self.folders = images.image_folder_splits(self.root)

    def splits(self) -> tuple[str, ...]:
        return tuple(self.folders)

    def frame_set(self, task: str, split: str) -> FrameSet:
        return images.load_image_folder(self.folders[split], num_classes=7)

    def inspect(self) -> dict[str, Any]:
        splits: dict[str, Any] = {}
        warnings: list[str] = []
        for name, folder in self.folders.items():
            scan = images.scan_image_folder(folder, num_classes=8)
            stats = image_split_stats(scan.frame_set.expr, scan.frame_set.expr_classes)
            stats["dropped_images"] = scan.dropped
            splits[name] = stats
            warnings.extend(scan.warnings)
        return {"tasks": {"EXPR": splits}, "warnings": warnings_report(warnings, len(warnings))}
