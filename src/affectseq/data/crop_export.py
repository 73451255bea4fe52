"""Planning ``affectseq data faces``: which raw video to crop for which annotated person, and their annotations.

A dataset with raw videos but no face crops (users' ``video_csv`` recordings, clip datasets
such as ``clip_folders``/DFEW, any registered video layout, or an Aff-Wild2 tree with ``videos/``
but no ``cropped_aligned/``) becomes an ABAW tree:
``OUT/cropped_aligned/<video_id>/<frame_idx + 1:05d>.jpg`` plus annotation files that
:class:`~affectseq.data.abaw.AbawDataset` reads. This module decides the work (one
:class:`CropJob` per raw video, one :class:`CropPerson` per annotated person of it) and
writes no pixels; the faces stage runs in :mod:`affectseq.prepare.face_crops`.

Which face is the annotated person (``CropPerson.rule``):

* ``"main"`` (default): the tracker's main face, as ``predict --main-face-only`` tracks it;
* ``"left"`` / ``"right"``: ABAW's ``<video>_left`` / ``<video>_right``: faces whose track
  lies (on average) in that half of the frame, the largest such face per frame;
* ``"face_id"``: a ``face_id`` column in the user's CSV names, per frame, the face id that
  ``affectseq predict`` (same ``--detect-every``, all faces) reports for the person; frames
  whose ``face_id`` cell is empty get no crop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affectseq import labels
from affectseq.data.abaw import AnnotatedVideo
from affectseq.data.abaw_layout import LAYOUT_TASK_FOLDERS, TWO_PERSON_SUFFIXES
from affectseq.errors import InputError
from affectseq.utils.naming import safe_name, short_hash

CROP_ROOT = "cropped_aligned"
FACE_ID_COLUMN = "face_id"
RULES: tuple[str, ...] = ("main", "left", "right", "face_id")


@dataclass(frozen=True)
class CropPerson:
    """One annotated person of a raw video: its output ``video_id``, face rule and annotation files.

    ``annotations`` maps a path relative to OUT to either the file's text (video_csv) or the
    source file to copy (ABAW). ``face_ids`` (rule ``"face_id"``): int64 per frame, -1 = none.
    ``sources``: the person's annotated videos, one per task (the labels its annotations hold).
    """

    video_id: str
    rule: str
    annotations: dict[str, str | Path]
    face_ids: np.ndarray | None = field(default=None, repr=False, compare=False)
    sources: tuple[AnnotatedVideo, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True)
class CropJob:
    """One raw video (or the part ``start_sec``..``end_sec`` of it) and the persons annotated on it.

    ``key`` names its finished marker; ``fps``: the rate the dataset gives the video (folders of
    frames with ``--fps``), recorded with its crops; None: read from the video.
    """

    key: str
    video: Path
    persons: tuple[CropPerson, ...]
    start_sec: float | None = None
    end_sec: float | None = None
    fps: float | None = None


@dataclass
class CropPlan:
    """What ``data faces`` (and extraction straight from videos) does with a dataset.

    ``declaration``: written as the output tree's ``.affectseq-dataset.json`` (label level and classes
    of a clip dataset, so the crop tree reads back as clips with the dataset's own classes); {} for none.
    """

    layout: str
    jobs: list[CropJob]
    notes: list[str]
    label_level: str = "frame"
    expr_classes: tuple[str, ...] = ()
    declaration: dict[str, Any] = field(default_factory=dict)


def plan_crop_jobs(root: str | os.PathLike[str], layout: str | None = None, **options: Any) -> CropPlan:
    """The :class:`CropPlan` of the dataset at ``root``: any video layout of the registry with raw videos.

    ``layout``/``options``: as :func:`affectseq.data.registry.open_dataset`. ``notes`` lists annotated
    videos left out (no raw video) and dataset warnings.
    """
    from affectseq.data.registry import detect_layout, get_layout, label_level

    chosen, name = (get_layout(layout), layout) if layout else detect_layout(root)
    if chosen.kind != "videos":
        raise InputError(root, f"a {name} dataset holds no videos: data faces needs videos with labels "
                               "(<name>.mp4 + <name>.csv pairs, clips, or an ABAW tree with raw videos)")
    if chosen.name == "abaw":
        jobs, notes, ds = _abaw_jobs(Path(root), **options)
    else:
        ds = chosen.load(Path(root), **options)
        jobs, notes = _video_jobs(Path(root), ds)
    level = label_level(ds)
    classes = tuple(getattr(ds, "expr_classes", ())) if "EXPR" in ds.tasks else ()
    declaration: dict[str, Any] = {}
    if level == "clip" or (classes and classes not in (labels.EXPR_CLASSES_7, labels.EXPR_CLASSES_8)):
        declaration = {"label_level": level, "expr_classes": list(classes), "source_layout": ds.layout}
    return CropPlan(getattr(ds, "layout", None) or name, jobs, notes, level, classes, declaration)


def _video_jobs(root: Path, ds: Any) -> tuple[list[CropJob], list[str]]:
    """One job per annotated recording of any video layout: its tasks' labels as ABAW 6 files.

    A recording is one ``annotation_path`` + ``source_video`` + time range (a video_csv pair, a
    clip); its person is the main face, or per frame a ``face_id`` column of a video_csv CSV.
    """
    groups: dict[tuple[str, str, Any, Any], list[AnnotatedVideo]] = {}
    missing: set[str] = set()
    for task in ds.tasks:
        for split in ds.splits(task):
            for video in ds.videos(task, split):
                if video.source_video is None:
                    missing.add(video.video_id)
                    continue
                key = (str(video.annotation_path), str(video.source_video), video.start_sec, video.end_sec)
                groups.setdefault(key, []).append(video)
    jobs: list[CropJob] = []
    taken: set[str] = set()
    for key, videos in sorted(groups.items(), key=lambda item: (item[0][:2], item[0][2] or -1.0)):
        first = videos[0]
        video_id = _unique_id(first.video_id, _identity(root, first), taken)
        texts = {annotation_relpath(v.task, v.split, video_id): annotation_text(v) for v in videos}
        csv = first.annotation_path
        face_ids = read_face_ids(csv, first.n_frames) if csv.suffix.lower() == ".csv" and first.start_sec is None \
            and getattr(ds, "layout", "") == "video_csv" else None
        rule = "main" if face_ids is None else "face_id"
        person = CropPerson(video_id, rule, dict(texts), face_ids, tuple(videos))
        assert first.source_video is not None
        jobs.append(CropJob(video_id, first.source_video, (person,), first.start_sec, first.end_sec, first.fps))
    notes = [f"{vid}: no video found; no crops made" for vid in sorted(missing)]
    return jobs, notes + [str(w) for w in ds.warnings]


def _identity(root: Path, video: AnnotatedVideo) -> str:
    """What tells a recording apart: its annotation file under ``root`` (a video_csv CSV), and for a clip
    also its video and time range (a clip list names many clips)."""
    text = video.annotation_path.relative_to(root).as_posix() if video.annotation_path.is_relative_to(root) \
        else video.annotation_path.name
    if video.source_video is not None and video.source_video.stem != video.annotation_path.stem:
        text += f":{video.source_video.name}:{video.start_sec}:{video.end_sec}"
    return text


def _unique_id(stem: str, identity: str, taken: set[str]) -> str:
    """A safe ``video_id`` for a user's file stem; two files with one stem (other splits) get a hash."""
    video_id = safe_name(stem)
    if video_id in taken:
        video_id = f"{video_id}-{short_hash(identity)}"
    taken.add(video_id)
    return video_id


def _abaw_jobs(root: Path, **options: Any) -> tuple[list[CropJob], list[str], Any]:
    from affectseq.data.abaw import AbawDataset

    if options:
        raise InputError(root, f"an ABAW tree takes no option {', '.join(sorted(options))}")
    ds = AbawDataset(root, check_video_lengths=False)
    folders = ds.tree.task_dirs
    persons: dict[Path, dict[str, list[AnnotatedVideo]]] = {}
    missing: set[str] = set()
    for task in ds.tasks:
        for split in ds.splits(task):
            for video in ds.videos(task, split):
                if video.source_video is None:
                    missing.add(video.video_id)
                else:
                    persons.setdefault(video.source_video, {}).setdefault(video.video_id, []).append(video)
    jobs = [CropJob(source.stem, source, tuple(_abaw_person(vid, videos, folders) for vid, videos in sorted(ids.items())))
            for source, ids in sorted(persons.items())]
    notes = [f"{vid}: no raw video found in the tree; no crops made" for vid in sorted(missing)]
    return jobs, notes + [str(w) for w in ds.warnings if "no cropped_aligned" not in w.problem], ds


def _abaw_person(video_id: str, videos: list[AnnotatedVideo], folders: dict[str, Path]) -> CropPerson:
    """One ABAW person: its annotation files are copied as they are."""
    annotations: dict[str, str | Path] = {
        f"{folders[v.task].name}/{v.split}/{v.annotation_path.name}": v.annotation_path for v in videos}
    return CropPerson(video_id, abaw_rule(video_id), annotations, sources=tuple(videos))


def abaw_rule(video_id: str) -> str:
    """``"left"``/``"right"`` for ABAW's two-person ids (``<video>_left``/``_right``), else ``"main"``."""
    for suffix in TWO_PERSON_SUFFIXES:
        if video_id.endswith(suffix):
            return suffix.lstrip("_")
    return "main"


def annotation_relpath(task: str, split: str, video_id: str) -> str:
    """Where an ABAW 6 annotation file of ``video_id`` goes under OUT, e.g. ``EXPR_Recognition_Challenge/train/x.txt``.

    Split folder names are kept as found (``train``, ``val``...); every consumer reads common aliases.
    """
    return f"{LAYOUT_TASK_FOLDERS['abaw6'][task]}/{split}/{video_id}.txt"


def annotation_text(video: AnnotatedVideo) -> str:
    """An ABAW 6 annotation file (header + one row per frame) holding ``video``'s labels.

    EXPR's header is the class list the labels index (``video.expr_classes``: ABAW's 8 for video_csv,
    a clip dataset's own; a tree with other classes than ABAW's declares them, see :class:`CropPlan`).

    Unannotated rows use ABAW's markers (``-5,-5``; ``-1``; ``-1`` per AU); values are
    written with the shortest text that reads back as the same float32.
    """
    if video.task == "VA":
        rows = [f"{_num(v)},{_num(a)}" if ok else "-5,-5" for (v, a), ok in zip(video.labels, video.label_valid)]
        return "\n".join(["valence,arousal", *rows]) + "\n"
    if video.task == "EXPR":
        values = np.where(video.label_valid, video.labels, labels.EXPR_UNANNOTATED)
        header = video.expr_classes or labels.EXPR_CLASSES_8  # the space the labels index
        return ",".join(header) + "\n" + "".join(f"{int(v)}\n" for v in values)
    columns = [labels.AU_NAMES.index(name) for name in video.au_columns]
    rows = [",".join(str(int(v)) for v in row) for row in video.labels[:, columns]]
    return "\n".join([",".join(video.au_columns), *rows]) + "\n"


def _num(value: Any) -> str:
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def read_face_ids(csv: Path, n_frames: int) -> np.ndarray | None:
    """The CSV's ``face_id`` column as int64 per ``frame_idx`` (-1 = none), or None without that column."""
    import pandas as pd

    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    table.columns = [str(c).strip().lower() for c in table.columns]
    if FACE_ID_COLUMN not in table.columns:
        return None
    out = np.full(n_frames, -1, np.int64)
    for line, (frame, face) in enumerate(zip(table["frame_idx"], table[FACE_ID_COLUMN]), start=2):
        face = face.strip()
        if not face:
            continue
        try:
            frame_idx, face_id = int(frame), int(face)
        except ValueError:
            raise InputError(csv, f"face_id {face!r} (frame_idx {frame!r}) is not an integer", line) from None
        if 0 <= frame_idx < n_frames:  # rows outside the video are VideoCsvDataset's warnings already
            out[frame_idx] = face_id
    return out
