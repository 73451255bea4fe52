"""The generic clip layouts: class folders of clips (``clip_folders``) and a CSV list of clips (``clip_list``).

``clip_folders``::

    ROOT/<class>/<clip>.<any video suffix>             no split folders: 20% of each class -> validation
    ROOT/<train|validation|test>/<class>/<clip>.mp4    split folders (any alias: val, Training, ...)
    ROOT/.../<class>/<clip>/00001.jpg ...              a clip may be a folder of numbered frame images
                                                       (its rate: --fps; unknown otherwise)

The class is the folder's name (see :func:`affectseq.data.clips.clip_classes`). ``clip_list``: a CSV
with a header naming ``video`` and ``label`` columns, optionally ``split`` and ``start_sec``/``end_sec``
(a part of a longer video); video paths are relative to the CSV's folder. Both yield a
:class:`~affectseq.data.clips.ClipDataset`.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from affectseq.data.clips import ClipDataset, ClipEntry, clip_id, hold_out_validation
from affectseq.data.splits import SPLIT_ROLES, normalise_split
from affectseq.io.frame_folder import FRAME_SUFFIXES, is_frame_folder
from affectseq.io.video import VIDEO_SUFFIXES

CLIP_LIST_COLUMNS: tuple[str, ...] = ("video", "label", "split", "start_sec", "end_sec")


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError:
        return []


def _is_clip(path: Path) -> bool:
    return (path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES) or is_frame_folder(path)


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in FRAME_SUFFIXES for p in folder.iterdir() if p.is_file())


def class_folder_splits(root: Path) -> dict[str, Path]:
    """``{split: folder holding class folders}``: ROOT's split folders, or ROOT itself as split ""."""
    splits = {d.name: d for d in _subdirs(root) if normalise_split(d.name) in SPLIT_ROLES}
    return splits or {"": root}


def is_clip_folders(path: Path) -> bool:
    """Class folders holding clips (video files or frame folders) and no loose images (an image tree)."""
    if not path.is_dir():
        return False
    classes = [c for folder in class_folder_splits(path).values() for c in _subdirs(folder)]
    with_clips = [c for c in classes if any(_is_clip(p) for p in c.iterdir())]
    return len(classes) >= 2 and bool(with_clips) and not any(_has_images(c) for c in classes)


class ClipFoldersDataset(ClipDataset):
    """``clip_folders``: ROOT/[split/]<class>/<clip> (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str], strict: bool = False, fps: float | None = None):
        root = Path(root)
        entries: list[ClipEntry] = []
        problems: list[tuple[Path, str, int | None]] = []
        splits = class_folder_splits(root)
        for split_name, folder in splits.items():
            for class_dir in _subdirs(folder):
                clips = sorted(p for p in class_dir.iterdir() if not p.name.startswith(".") and _is_clip(p))
                if not clips:
                    problems.append((class_dir, "empty class folder: no clips (video files or frame folders)",
                                     None))
                entries += [ClipEntry(c, class_dir.name, normalise_split(split_name) if split_name else "",
                                      clip_id(c.relative_to(root)), class_dir) for c in clips]
        notes = []
        if list(splits) == [""]:
            notes.append(f"no split folders: {int(100 * 0.2)}% of each class's clips held out as validation "
                         "(fixed by each clip's name)")
        super().__init__(root, "clip_folders", hold_out_validation(entries), strict=strict, fps=fps,
                         problems=problems, notes=notes)


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return [c.strip().lower() for c in next(csv.reader(fh), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def is_clip_list(path: Path) -> bool:
    """A ``.csv`` file whose header names ``video`` and ``label`` columns."""
    return path.is_file() and path.suffix.lower() == ".csv" and {"video", "label"} <= set(_header(path))


def _time(text: str) -> float | None:
    """A row's ``start_sec``/``end_sec``: None when empty; ValueError unless a finite number >= 0."""
    if not text.strip():
        return None
    seconds = float(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(text)
    return seconds


class ClipListDataset(ClipDataset):
    """``clip_list``: one clip per CSV row (``video,label[,split][,start_sec,end_sec]``), paths relative to it."""

    def __init__(self, path: str | os.PathLike[str], strict: bool = False, fps: float | None = None):
        path = Path(path)
        entries: list[ClipEntry] = []
        problems: list[tuple[Path, str, int | None]] = []
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
        columns = [c.strip().lower() for c in rows[0]]
        for line, row in enumerate(rows[1:], start=2):
            cells = dict(zip(columns, (c.strip() for c in row)))
            if not any(cells.values()):
                continue
            entry = self._entry(path, cells, line, problems)
            if entry is not None:
                entries.append(entry)
        notes = [] if "split" in columns else [
            "no split column: 20% of each label's clips held out as validation (fixed by each clip's name)"]
        super().__init__(path.parent, "clip_list", hold_out_validation(entries), strict=strict, fps=fps,
                         problems=problems, notes=notes)

    @staticmethod
    def _entry(path: Path, cells: dict[str, str], line: int,
               problems: list[tuple[Path, str, int | None]]) -> ClipEntry | None:
        video, label = cells.get("video", ""), cells.get("label", "")
        if not video or not label:
            problems.append((path, f"row without {'a video' if not video else 'a label'}; skipped", line))
            return None
        try:
            start, end = _time(cells.get("start_sec", "")), _time(cells.get("end_sec", ""))
        except ValueError:
            problems.append((path, f"start_sec/end_sec must be finite numbers of seconds >= 0, got "
                                   f"{cells.get('start_sec')!r}, {cells.get('end_sec')!r}; row skipped", line))
            return None
        if start is not None and end is not None and end <= start:
            problems.append((path, f"end_sec {end:g} is not after start_sec {start:g}; row skipped", line))
            return None
        split = cells.get("split", "")
        if split and normalise_split(split) not in SPLIT_ROLES:
            problems.append((path, f"split {split!r} is not train, validation or test; row skipped", line))
            return None
        clip = (path.parent / video)
        if not clip.exists():
            problems.append((path, f"clip {video} not found; row skipped", line))
            return None
        rel = clip.relative_to(path.parent) if clip.is_relative_to(path.parent) else Path(clip.name)
        return ClipEntry(clip, label, normalise_split(split) if split else "", clip_id(rel, start, end), path, line,
                         start, end)
