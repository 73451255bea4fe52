"""Clip datasets: one label per short clip, as ``AnnotatedVideo`` records (the clip-dataset contract).

Every clip layout (``clip_folders``, ``clip_list``, DFEW, FERV39k, MAFW, AFEW, RAVDESS, CREMA-D; see
:mod:`affectseq.data.clip_layouts`, :mod:`affectseq.data.clip_benchmarks`) lists :class:`ClipEntry`
rows and hands them to :class:`ClipDataset`, which

* maps class names to the dataset's ``expr_classes`` (:func:`clip_classes`): names that are
  expressions or their aliases (``happy``, ``Angry``, ``surprised``) become the canonical classes in
  canonical order; other names (a study's ``calm``, ``pain``; MAFW's ``anxiety``) stay the dataset's
  own classes, after the canonical ones, sorted;
* yields one :class:`~affectseq.data.abaw.AnnotatedVideo` per clip (task ``EXPR``) whose per-frame
  labels all equal the clip's class, ``source_video`` = the clip (a video file or a folder of frame
  images), ``start_sec``/``end_sec`` for a part of a video, and ``fps`` when the layout knows it;
* keeps the adapters' rule for bad input: an unreadable clip, a clip listed twice, an empty class
  folder, a class with no clips, a row without a label -- each is one warning naming the file (and
  line), the rest of the dataset is still read; ``strict=True`` turns the first into an InputError.

The dataset has ``label_level = "clip"`` and ``has_crops = False``: faces come from the clips
(``data faces``, or ``extract`` straight from them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from affectseq import labels
from affectseq.data.abaw import AnnotatedVideo, normalise_task
from affectseq.data.abaw_annotations import DataWarning
from affectseq.errors import InputError
from affectseq.utils.naming import safe_name, short_hash

VALIDATION_SHARE = 0.2  # clips of each class held out for validation when a dataset names no splits


@dataclass(frozen=True)
class ClipEntry:
    """One labelled clip as a layout lists it.

    ``label``: the class name as the dataset spells it; ``listed_in``/``line``: the file (and 1-based
    line) that lists the clip, named in warnings; ``split``: a split name, or "" for none given.
    """

    clip: Path
    label: str
    split: str
    video_id: str
    listed_in: Path
    line: int | None = None
    start_sec: float | None = None
    end_sec: float | None = None


def clip_classes(names: Iterable[str], keep: Sequence[str] = ()) -> tuple[tuple[str, ...], dict[str, str]]:
    """``(expr_classes, {name: class})`` for a dataset's class names (see the module docstring).

    Contempt (any spelling) is ``Contempt``, FER+'s name, placed after the canonical classes: not ABAW's
    catch-all Other, which scoring still matches it to (``labels.class_index_map``). ``keep``: names that
    stay the dataset's own even though an alias would map them.
    """
    kept = {k.lower() for k in keep}
    mapping: dict[str, str] = {}
    for name in set(names):
        key = name.strip().lower()
        canonical = None if key in kept else labels.canonical_expr_name(name)
        if canonical == "Other" and key != "other":
            canonical = "Contempt" if key == "contempt" else None
        mapping[name] = canonical or name.strip()
    known = labels.EXPR_CLASSES_8 + ("Contempt",)
    canonical_order = [c for c in known if c in mapping.values()]
    own = sorted({c for c in mapping.values() if c not in known}, key=lambda c: (c.lower(), c))
    return tuple(canonical_order + own), mapping


def clip_id(relpath: Path | str, start_sec: float | None = None, end_sec: float | None = None) -> str:
    """A stable, file-system-safe id for a clip: its path under the dataset root (and its time range)."""
    rel = Path(relpath)
    text = "-".join(rel.with_suffix("").parts) if rel.suffix else "-".join(rel.parts)
    if start_sec is not None or end_sec is not None:
        text += f"@{start_sec or 0:g}-{end_sec if end_sec is not None else 'end'}"
    return safe_name(text)


def hold_out_validation(entries: list[ClipEntry], share: float = VALIDATION_SHARE) -> list[ClipEntry]:
    """Entries without a split: per class, ``share`` of the clips (at least one of two or more) become
    ``validation`` and the rest ``train``; the choice hashes each clip's id, so it never changes."""
    out: list[ClipEntry] = []
    by_label: dict[str, list[ClipEntry]] = {}
    for entry in entries:
        if entry.split:
            out.append(entry)
        else:
            by_label.setdefault(entry.label, []).append(entry)
    for group in by_label.values():
        group = sorted(group, key=lambda e: short_hash(e.video_id))
        n_val = 0 if len(group) < 2 else max(1, int(round(share * len(group))))
        out += [_with_split(e, "validation" if k < n_val else "train") for k, e in enumerate(group)]
    return out


def _with_split(entry: ClipEntry, split: str) -> ClipEntry:
    return ClipEntry(entry.clip, entry.label, split, entry.video_id, entry.listed_in, entry.line, entry.start_sec,
                     entry.end_sec)


def clip_length(entry: ClipEntry, fps: float | None) -> int | InputError:
    """Frames of a clip (header count; a time range at the video's rate), or the InputError saying why not."""
    from affectseq.io.video import header_frame_count, probe_video

    try:
        if entry.start_sec is None and entry.end_sec is None:
            return header_frame_count(entry.clip)
        info = probe_video(entry.clip)
        rate = info.fps or fps or 0.0
        end = entry.end_sec if entry.end_sec is not None else info.duration_sec
        return int(round((end - (entry.start_sec or 0.0)) * rate)) if rate else 0
    except InputError as err:
        return err


class ClipDataset:
    """Labelled clips with the video-dataset surface (``tasks``, ``splits``, ``videos``...), one label per clip.

    Layouts build it from :class:`ClipEntry` rows; ``problems`` are what the layout found while
    listing (``(path, problem, line)``), reported like the clips' own. ``fps``: the rate of clips that
    are folders of frames (``--fps``); video files keep their own. ``classes``: a fixed class list
    (a benchmark's), else derived from the labels (:func:`clip_classes`).
    """

    label_level = "clip"
    has_crops = False

    def __init__(self, root: str | os.PathLike[str], layout: str, entries: Sequence[ClipEntry], *,
                 strict: bool = False, fps: float | None = None, keep_own: Sequence[str] = (),
                 problems: Sequence[tuple[Path, str, int | None]] = (), notes: Sequence[str] = ()):
        self.root = Path(root)
        self.layout = layout
        self.strict = strict
        self.fps = float(fps) if fps else None
        if fps is not None and not fps > 0:
            raise InputError(self.root, f"--fps must be positive, got {fps}")
        self.warnings: list[DataWarning] = []
        self.n_problems = 0
        self.notes = list(notes)
        for path, problem, line in problems:
            self._warn(path, problem, line)
        self.expr_classes, self._class_of = clip_classes((e.label for e in entries), keep_own)
        self._videos: dict[str, list[AnnotatedVideo]] = {}
        self._build(entries)
        if not any(self._videos.values()):
            raise InputError(self.root, f"no readable labelled clips found for the {layout} layout")
        self._check_classes()

    # --- the video-dataset surface ------------------------------------------------------------
    @property
    def tasks(self) -> tuple[str, ...]:
        """``("EXPR",)``: a clip carries one expression label."""
        return ("EXPR",)

    def splits(self, task: str) -> tuple[str, ...]:
        """Split names with at least one clip (``train``, ``validation``, ``test`` as the layout names them)."""
        normalise_task(task)
        return tuple(s for s, videos in self._videos.items() if videos)

    def videos(self, task: str, split: str) -> list[AnnotatedVideo]:
        """The clips of a split, sorted by ``video_id``."""
        if normalise_task(task) != "EXPR":
            return []
        if split not in self._videos:
            raise InputError(self.root, f"no split {split!r} (found: {', '.join(self._videos) or 'none'})")
        return self._videos[split]

    def clip_label(self, video_id: str) -> str | None:
        """The class name of a clip, or None for an unknown id."""
        for videos in self._videos.values():
            for video in videos:
                if video.video_id == video_id:
                    return self.expr_classes[int(video.labels[0])] if video.n_frames else None
        return None

    # --- building -----------------------------------------------------------------------------
    def _warn(self, path: Path | str, problem: str, line: int | None = None) -> None:
        if self.strict:
            raise InputError(path, problem, line)
        self.warnings.append(DataWarning(str(path), problem, line))
        self.n_problems += 1

    def _build(self, entries: Sequence[ClipEntry]) -> None:
        seen: dict[tuple[str, float | None, float | None], ClipEntry] = {}
        ids: set[str] = set()
        # ~5 ms per video file (its container header); threads gained nothing measurable (PyAV holds the GIL).
        for entry in entries:
            key = (str(entry.clip.resolve()), entry.start_sec, entry.end_sec)
            if key in seen:
                first = seen[key]
                where = f"line {first.line}" if first.line else str(first.listed_in)
                self._warn(entry.listed_in, f"clip {entry.clip.name} listed twice (first at {where}); "
                                            "the first is kept", entry.line)
                continue
            if entry.video_id in ids:
                self._warn(entry.listed_in, f"clip id {entry.video_id} given twice; the first is kept", entry.line)
                continue
            video = self._annotated(entry, clip_length(entry, self.fps))
            if video is None:
                continue
            seen[key] = entry
            ids.add(entry.video_id)
            self._videos.setdefault(entry.split, []).append(video)
        order = {role: k for k, role in enumerate(("train", "validation", "test"))}
        self._videos = {split: sorted(self._videos[split], key=lambda v: v.video_id)
                        for split in sorted(self._videos, key=lambda s: (order.get(s, len(order)), s))}

    def _annotated(self, entry: ClipEntry, length: int | InputError) -> AnnotatedVideo | None:
        """The clip's record, or None (warned) when it cannot be read (``length``: its frames, or why not)."""
        if isinstance(length, InputError):
            self._warn(length.path, f"clip unreadable, left out: {length.problem}")
            return None
        n_frames = length
        if n_frames < 1:
            self._warn(entry.listed_in, f"clip {entry.clip.name} has no frames in its time range; left out",
                       entry.line)
            return None
        index = self.expr_classes.index(self._class_of[entry.label])
        return AnnotatedVideo(
            video_id=entry.video_id, task="EXPR", split=entry.split, annotation_path=entry.listed_in,
            source_video=entry.clip, crop_dir=None, n_frames=n_frames, labels=np.full(n_frames, index, np.int64),
            label_valid=np.ones(n_frames, bool), has_face=np.zeros(n_frames, bool), expr_classes=self.expr_classes,
            fps=self.fps if entry.clip.is_dir() else None, start_sec=entry.start_sec, end_sec=entry.end_sec,
        )

    def _check_classes(self) -> None:
        """Warn about a label none of whose clips could be read, and a class with no clip in a split
        (it cannot be learnt, or scored, there)."""
        present = {split: {int(v.labels[0]) for v in videos} for split, videos in self._videos.items()}
        for k, name in enumerate(self.expr_classes):
            if not any(k in found for found in present.values()):
                self._warn(self.root, f"label {name} has no readable clips")
                continue
            for split, found in present.items():
                if k not in found:
                    self._warn(self.root, f"class {name} has no clips in split {split}")
