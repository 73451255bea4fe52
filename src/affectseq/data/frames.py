"""``FrameSet``: the one interface frame training and feature extraction consume.

A frame set is random-access, labelled face images of one split. Labels live in
plain NumPy arrays (cheap to slice, count and balance); images load lazily one
at a time, so a set is cheap to pickle into DataLoader worker processes.

Three concrete sets cover every adapter:

* :class:`ArrayFrameSet` keeps small images in one uint8 array (FER2013: 48x48
  grayscale, ~66 MB for the train split, shared copy-on-write by forked workers);
* :class:`FileFrameSet` keeps image paths (class-per-folder sets) and decodes a
  file only when asked;
* :class:`CropFrameSet` keeps ABAW crops as (video, frame_idx) pairs, 12 bytes a
  frame, and builds ``<crop_dir>/<frame_idx + 1:05d>.jpg`` when asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from affectseq.errors import InputError


@runtime_checkable
class FrameSet(Protocol):
    """Random-access labelled face images of one split (see docs/architecture.md)."""

    name: str
    expr_classes: tuple[str, ...]  # () when the set has no EXPR labels
    expr: np.ndarray | None  # int64 (N,), -1 unannotated
    va: np.ndarray | None  # float32 (N, 2), NaN unannotated
    au: np.ndarray | None  # int8 (N, 13), -1 unannotated

    def __len__(self) -> int: ...

    def load_image(self, i: int) -> np.ndarray:
        """Image ``i`` as (H, W, 3) uint8 RGB; grayscale sources are repeated to 3 channels."""
        ...


def _check_labels(n: int, expr: np.ndarray | None, va: np.ndarray | None, au: np.ndarray | None):
    """Coerce label arrays to the canonical dtypes and check they have one row per item."""
    if expr is not None:
        expr = np.asarray(expr, dtype=np.int64)
        if expr.shape != (n,):
            raise ValueError(f"expr must have shape ({n},), got {expr.shape}")
    if va is not None:
        va = np.asarray(va, dtype=np.float32)
        if va.shape != (n, 2):
            raise ValueError(f"va must have shape ({n}, 2), got {va.shape}")
    if au is not None:
        au = np.asarray(au, dtype=np.int8)
        if au.ndim != 2 or au.shape[0] != n:
            raise ValueError(f"au must have shape ({n}, n_aus), got {au.shape}")
    return expr, va, au


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as contiguous (H, W, 3) uint8, repeating a grayscale channel."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W), (H, W, 1) or (H, W, 3) image, got shape {image.shape}")
    return np.ascontiguousarray(image, dtype=np.uint8)


def read_image_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB; an unreadable file raises ``InputError``."""
    import cv2

    # OpenCV decodes small JPEG crops ~3x faster than Pillow (the hot path of frame
    # training and extraction: millions of 112x112 crops); gray becomes 3 equal channels.
    bgr = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if bgr is not None:
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    # OpenCV returns None for missing files and formats it lacks; Pillow reads the rest
    # (and names the problem).
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            # np.array copies: PIL's buffer view is read-only, and torch.from_numpy warns on those.
            return to_rgb_uint8(np.array(img.convert("RGB")))
    except FileNotFoundError:
        raise InputError(path, "image file not found") from None
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(path, f"not a readable image ({err})") from None


@dataclass
class ArrayFrameSet:
    """A frame set whose images are rows of one uint8 array ((N, H, W) gray or (N, H, W, 3) RGB)."""

    name: str
    images: np.ndarray
    expr_classes: tuple[str, ...] = ()
    expr: np.ndarray | None = None
    va: np.ndarray | None = None
    au: np.ndarray | None = None
    # Identifier of each item (e.g. FER2013's original file name); optional, for reports.
    item_names: np.ndarray | None = field(default=None, repr=False)
    # Soft EXPR targets (N, len(expr_classes)), rows summing to 1 (e.g. FER+'s crowd votes); optional.
    expr_dist: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim not in (3, 4):
            raise ValueError(f"images must be uint8 (N, H, W[, 3]), got {self.images.dtype} {self.images.shape}")
        self.expr, self.va, self.au = _check_labels(len(self.images), self.expr, self.va, self.au)
        if self.expr_dist is not None:
            self.expr_dist = np.asarray(self.expr_dist, dtype=np.float32)
            if self.expr_dist.shape != (len(self.images), len(self.expr_classes)):
                raise ValueError(f"expr_dist must have shape ({len(self.images)}, {len(self.expr_classes)}), "
                                 f"got {self.expr_dist.shape}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def load_image(self, i: int) -> np.ndarray:
        """Image ``i`` as (H, W, 3) uint8 RGB (a copy: callers may write to it)."""
        image = self.images[i]
        return to_rgb_uint8(image) if image.ndim == 2 else np.array(to_rgb_uint8(image))

    def __repr__(self) -> str:
        return f"ArrayFrameSet(name={self.name!r}, n={len(self)}, image_shape={self.images.shape[1:]})"


@dataclass
class FileFrameSet:
    """A frame set whose images are files on disk, decoded lazily by :meth:`load_image`.

    ``paths`` are stored as one NumPy string array rather than a list of ``Path``
    objects: it pickles in one block and avoids the per-object refcount writes
    that un-share memory in forked DataLoader workers.
    """

    name: str
    paths: np.ndarray
    expr_classes: tuple[str, ...] = ()
    expr: np.ndarray | None = None
    va: np.ndarray | None = None
    au: np.ndarray | None = None
    # For video-derived sets (ABAW): the annotated video and frame_idx of each item.
    video_ids: np.ndarray | None = field(default=None, repr=False)
    frame_idx: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.paths = np.asarray([os.fspath(p) for p in self.paths], dtype=np.str_)
        if self.paths.ndim != 1:
            raise ValueError("paths must be a 1-D sequence")
        n = len(self.paths)
        self.expr, self.va, self.au = _check_labels(n, self.expr, self.va, self.au)
        if self.video_ids is not None:
            self.video_ids = np.asarray(self.video_ids, dtype=np.str_)
        if self.frame_idx is not None:
            self.frame_idx = np.asarray(self.frame_idx, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.paths.shape[0])

    def load_image(self, i: int) -> np.ndarray:
        """Decode item ``i`` to (H, W, 3) uint8 RGB."""
        return read_image_rgb(str(self.paths[i]))

    def __repr__(self) -> str:
        return f"FileFrameSet(name={self.name!r}, n={len(self)})"


@dataclass
class CropFrameSet:
    """Face crops ``<crop_dir>/<frame_idx + 1:05d>.jpg`` of many videos (ABAW ``cropped_aligned``).

    Stores one crop folder per video plus two small integer arrays per item
    (12 bytes per frame, instead of a path string of ~300 bytes as fixed-width
    NumPy unicode: Aff-Wild2 has millions of crops).
    """

    name: str
    crop_dirs: np.ndarray  # (n_videos,) str
    video_names: np.ndarray  # (n_videos,) str
    video_pos: np.ndarray  # (N,) int32: index into crop_dirs / video_names
    frame_idx: np.ndarray  # (N,) int64: 0-based frame of the item in its video
    expr_classes: tuple[str, ...] = ()
    expr: np.ndarray | None = None
    va: np.ndarray | None = None
    au: np.ndarray | None = None
    label_level: str = "frame"  # "clip": each video is a clip with one label (scoring reports clip metrics)

    def __post_init__(self) -> None:
        self.crop_dirs = np.asarray([os.fspath(d) for d in self.crop_dirs], dtype=np.str_)
        self.video_names = np.asarray(self.video_names, dtype=np.str_)
        self.video_pos = np.asarray(self.video_pos, dtype=np.int32)
        self.frame_idx = np.asarray(self.frame_idx, dtype=np.int64)
        if self.video_pos.shape != self.frame_idx.shape or self.video_pos.ndim != 1:
            raise ValueError("video_pos and frame_idx must be 1-D arrays of the same length")
        if len(self.crop_dirs) != len(self.video_names):
            raise ValueError("crop_dirs and video_names must have one entry per video")
        self.expr, self.va, self.au = _check_labels(len(self.frame_idx), self.expr, self.va, self.au)

    def __len__(self) -> int:
        return int(self.frame_idx.shape[0])

    @property
    def video_ids(self) -> np.ndarray:
        """(N,) str: the video of each item (built on access; cheap to keep out of pickles)."""
        return self.video_names[self.video_pos]

    def path(self, i: int) -> str:
        """File path of item ``i``."""
        return f"{self.crop_dirs[self.video_pos[i]]}{os.sep}{int(self.frame_idx[i]) + 1:05d}.jpg"

    def load_image(self, i: int) -> np.ndarray:
        """Decode item ``i`` to (H, W, 3) uint8 RGB."""
        return read_image_rgb(self.path(i))

    def __repr__(self) -> str:
        return f"CropFrameSet(name={self.name!r}, n={len(self)}, videos={len(self.crop_dirs)})"


def class_counts(expr: np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    """Frames per class name over the valid (``>= 0``) labels of ``expr``."""
    valid = expr[expr >= 0]
    counts = np.bincount(valid, minlength=len(classes)) if valid.size else np.zeros(len(classes), np.int64)
    return {name: int(counts[i]) for i, name in enumerate(classes)}
