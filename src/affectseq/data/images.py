"""Still-image expression datasets: FER2013 (as packed in ../shared) and class-per-folder sets.

Both map into the canonical expression spaces of :mod:`affectseq.labels`:

* FER2013 npz (``images`` uint8 (N, 48, 48), ``labels`` already in the Aff-Wild2
  order, ``split`` 0 train / 1 validation (PublicTest) / 2 test (PrivateTest));
* a class-per-folder tree ``root/<class>/*.jpg`` as AffectNet and RAF-DB users
  hold: class names go through :func:`affectseq.labels.canonical_expr_name`
  (``Contempt`` becomes ``Other`` in the 8-class space and is dropped, and
  counted, in the 7-class space); numbered folders follow RAF-DB (1-7 =
  Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral) unless a ``0``
  folder shows AffectNet's numbering (0-7 = Neutral, Happiness, Sadness,
  Surprise, Fear, Disgust, Anger, Contempt).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affectseq import labels
from affectseq.data.frames import ArrayFrameSet, FileFrameSet
from affectseq.errors import InputError

FER2013_SPLITS: dict[str, int] = {"train": 0, "validation": 1, "test": 2}
FER2013_KEYS: tuple[str, ...] = ("images", "labels", "split")

RAFDB_NUMBERED: dict[str, str] = {
    "1": "Surprise", "2": "Fear", "3": "Disgust", "4": "Happiness", "5": "Sadness", "6": "Anger", "7": "Neutral",
}
AFFECTNET_NUMBERED: dict[str, str] = {
    "0": "Neutral", "1": "Happiness", "2": "Sadness", "3": "Surprise",
    "4": "Fear", "5": "Disgust", "6": "Anger", "7": "Contempt",
}
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def npz_has_arrays(path: str | os.PathLike[str], keys: tuple[str, ...]) -> bool:
    """Whether ``path`` is an .npz archive holding (at least) the arrays ``keys``, without loading any."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() != ".npz":
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy") for name in archive.namelist()}
    except zipfile.BadZipFile:
        return False
    return set(keys) <= members


def is_fer2013_npz(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an .npz archive holding FER2013's ``images``/``labels``/``split`` arrays."""
    return npz_has_arrays(path, FER2013_KEYS)


def load_fer2013(npz_path: str | os.PathLike[str], split: str) -> ArrayFrameSet:
    """One split (``"train"``, ``"validation"`` or ``"test"``) of FER2013 as an :class:`ArrayFrameSet`.

    Images stay one uint8 (N, 48, 48) array (``load_image`` repeats the gray
    channel); ``expr`` indexes :data:`affectseq.labels.EXPR_CLASSES_7`.
    """
    if split not in FER2013_SPLITS:
        raise ValueError(f"unknown FER2013 split {split!r}; choose one of {sorted(FER2013_SPLITS)}")
    arrays = _read_fer2013_arrays(npz_path)
    keep = arrays["split"] == FER2013_SPLITS[split]
    return ArrayFrameSet(
        name=f"fer2013/{split}",
        images=np.ascontiguousarray(arrays["images"][keep]),
        expr_classes=labels.EXPR_CLASSES_7,
        expr=arrays["labels"][keep].astype(np.int64),
        item_names=arrays["names"][keep] if "names" in arrays else None,
    )


def fer2013_label_arrays(npz_path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(labels int64, split uint8)`` of every FER2013 image without decompressing the images."""
    arrays = _read_fer2013_arrays(npz_path, keys=("labels", "split"))
    return arrays["labels"].astype(np.int64), arrays["split"]


def read_npz_arrays(npz_path: str | os.PathLike[str], required: tuple[str, ...], what: str,
                    keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Arrays ``keys`` (default: all) of an .npz archive that must hold ``required``; InputError naming ``what``."""
    path = Path(npz_path)
    if not path.is_file():
        raise InputError(path, f"{what} archive not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in required if k not in archive.files]
            if missing:
                raise InputError(path, f"not a {what} archive: missing arrays {missing} (has {archive.files})")
            return {k: archive[k] for k in (keys or tuple(archive.files)) if k in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise InputError(path, f"not a readable .npz archive ({err})") from None


def _read_fer2013_arrays(npz_path: str | os.PathLike[str], keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    path = Path(npz_path)
    arrays = read_npz_arrays(path, FER2013_KEYS, "FER2013", keys)
    n = len(arrays["labels"])
    for key, value in arrays.items():
        if len(value) != n:
            raise InputError(path, f"array {key!r} has {len(value)} rows, 'labels' has {n}")
    lab = arrays["labels"]
    if lab.size and (lab.min() < 0 or lab.max() >= len(labels.EXPR_CLASSES_7)):
        raise InputError(path, f"labels outside 0..6: min {lab.min()}, max {lab.max()}")
    if "images" in arrays and (arrays["images"].dtype != np.uint8 or arrays["images"].ndim != 3):
        raise InputError(path, f"images must be uint8 (N, H, W), got {arrays['images'].dtype} {arrays['images'].shape}")
    return arrays


@dataclass
class ImageFolderScan:
    """What :func:`scan_image_folder` found: the frame set plus what it had to leave out."""

    frame_set: FileFrameSet
    folder_classes: dict[str, str]  # folder name -> canonical class
    dropped: dict[str, int] = field(default_factory=dict)  # folder name -> images left out
    warnings: list[str] = field(default_factory=list)


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def folder_class_name(folder: str, numbering: dict[str, str]) -> str | None:
    """Canonical class of a class folder name (named or numbered), or None when it is not an emotion."""
    if folder.isdigit():
        folder = numbering.get(str(int(folder)), "")
    return labels.canonical_expr_name(folder)


def looks_like_class_folder_root(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` has at least two sub-folders named as expression classes (by name or number)."""
    root = Path(root)
    if not root.is_dir():
        return False
    subdirs = [d.name for d in root.iterdir() if d.is_dir()]
    numbering = AFFECTNET_NUMBERED if "0" in subdirs else RAFDB_NUMBERED
    return sum(folder_class_name(d, numbering) is not None for d in subdirs) >= 2


def scan_image_folder(root: str | os.PathLike[str], num_classes: int = 8) -> ImageFolderScan:
    """Index a class-per-folder image tree into the canonical ``num_classes`` expression space.

    Folders that are not emotions, and classes with no place in the space
    (Contempt/Other when ``num_classes`` is 7), are dropped and counted.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "image folder not found")
    classes = labels.expr_classes(num_classes)
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    numbering = AFFECTNET_NUMBERED if any(d.name == "0" for d in subdirs) else RAFDB_NUMBERED
    paths: list[Path] = []
    expr: list[int] = []
    folder_classes: dict[str, str] = {}
    dropped: dict[str, int] = {}
    warnings: list[str] = []
    for folder in subdirs:
        canonical = folder_class_name(folder.name, numbering)
        images = _list_images(folder)
        if canonical is None or canonical not in classes:
            dropped[folder.name] = len(images)
            why = "not an expression class" if canonical is None else f"{canonical} has no place in {num_classes} classes"
            warnings.append(f"{folder}: {len(images)} images dropped ({why})")
            continue
        folder_classes[folder.name] = canonical
        paths.extend(images)
        expr.extend([classes.index(canonical)] * len(images))
    if not paths:
        raise InputError(root, "no images in class folders (expected root/<class>/*.jpg)")
    frame_set = FileFrameSet(name=root.name, paths=np.array([str(p) for p in paths]),
                             expr_classes=classes, expr=np.array(expr, dtype=np.int64))
    return ImageFolderScan(frame_set, folder_classes, dropped, warnings)


def load_image_folder(root: str | os.PathLike[str], num_classes: int = 8) -> FileFrameSet:
    """A class-per-folder image tree (AffectNet/RAF-DB style) as a :class:`FileFrameSet`.

    See :func:`scan_image_folder` for what is dropped; use it to see the counts.
    """
    return scan_image_folder(root, num_classes).frame_set


def image_folder_splits(root: str | os.PathLike[str]) -> dict[str, Path]:
    """``{split_name: folder}``: ``root`` itself when it holds class folders, else its sub-folders that do."""
    root = Path(root)
    if looks_like_class_folder_root(root):
        return {root.name: root}
    return {d.name: d for d in sorted(root.iterdir()) if d.is_dir() and looks_like_class_folder_root(d)}
