"""Aff-Wild2 / ABAW dataset adapter: every edition's layout, labels aligned to ``frame_idx`` with masks.

>>> ds = AbawDataset("/data/affwild2")          # doctest: +SKIP
>>> ds.layout, ds.tasks, ds.splits("EXPR")      # doctest: +SKIP
('abaw6', ('VA', 'EXPR', 'AU'), ('Train_Set', 'Validation_Set'))
>>> video = ds.videos("EXPR", "Train_Set")[0]   # doctest: +SKIP
>>> video.labels[video.has_face & video.label_valid]   # annotated frames with a face crop

Annotation files are parsed lazily, once per (task, split). Malformed input is
reported in :attr:`AbawDataset.warnings` (file and line) and the rest of the
dataset is still indexed, unless ``strict=True`` turns the first problem into an
:class:`~affectseq.errors.InputError`. See :mod:`affectseq.data.abaw_annotations`
for the per-task encodings and :mod:`affectseq.data.abaw_layout` for the layouts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectseq import labels
from affectseq.data.abaw_annotations import TASKS, AnnotationFileError, DataWarning, parse_annotation
from affectseq.data.abaw_layout import (AbawTree, crop_folder_fps, crop_frame_numbers, read_dataset_declaration,
                                        scan_abaw_root)
from affectseq.data.frames import CropFrameSet
from affectseq.errors import InputError


@dataclass
class AnnotatedVideo:
    """One annotated person of one task and split, labels aligned to ``frame_idx`` (= data row - 1).

    ``labels``: EXPR int64 (n,) / VA float32 (n, 2) / AU int8 (n, 13) over
    :data:`affectseq.labels.AU_NAMES`, in canonical encoding (-1 / NaN where not
    valid); ``label_valid`` is (n,) (or (n, 13) for AU); ``has_face`` is (n,):
    whether the frame has a face crop. ``fps``: the frame rate of the video the frames come from,
    when the dataset records it (``data faces`` crops, ``--fps`` of folders of frames); else None (read
    the raw video, if any). ``start_sec``/``end_sec``: the part of ``source_video`` this record covers
    (a ``clip_list`` row with a time range; frame 0 is the first frame at or after ``start_sec``);
    None for the whole video.
    """

    video_id: str
    task: str
    split: str
    annotation_path: Path
    source_video: Path | None
    crop_dir: Path | None
    n_frames: int
    labels: np.ndarray
    label_valid: np.ndarray
    has_face: np.ndarray
    expr_classes: tuple[str, ...] = ()
    au_columns: tuple[str, ...] = ()
    fps: float | None = None
    start_sec: float | None = None
    end_sec: float | None = None

    def crop_path(self, frame_idx: int) -> Path | None:
        """Path of the face crop of ``frame_idx`` (0-based), or None when the frame has none."""
        if self.crop_dir is None or not 0 <= frame_idx < self.n_frames or not self.has_face[frame_idx]:
            return None
        return self.crop_dir / f"{frame_idx + 1:05d}.jpg"

    @property
    def annotated(self) -> np.ndarray:
        """(n,) bool: the frame has a usable label (for AU: at least one annotated AU)."""
        return self.label_valid.any(axis=1) if self.label_valid.ndim == 2 else self.label_valid


def detect_abaw(path: Path) -> str | None:
    """The ABAW edition (``abaw2020``/``abaw3``/``abaw6``) of the tree at ``path``, or None (the registry's test)."""
    return scan_abaw_root(path).layout if path.is_dir() else None


def normalise_task(task: str) -> str:
    """``"va"``/``"VA"``/``"expr"``/... -> ``"VA"``/``"EXPR"``/``"AU"``."""
    upper = task.upper()
    if upper not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return upper


class AbawDataset:
    """An Aff-Wild2 tree in any ABAW layout: annotations, ``cropped_aligned`` crops, optional raw videos."""

    def __init__(self, root: str | os.PathLike[str], strict: bool = False, check_video_lengths: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(self.root, "dataset folder not found")
        self.strict = strict
        self.check_video_lengths = check_video_lengths
        self.tree: AbawTree = scan_abaw_root(self.root)
        if self.tree.layout is None:
            raise InputError(self.root, "no ABAW annotation folders found (e.g. EXPR_Recognition_Challenge/, "
                                        "VA_Estimation_Challenge/, annotations/EXPR_Set/)")
        self.warnings: list[DataWarning] = []
        self.n_problems = 0  # every problem, also those beyond the per-file detail limit
        # A tree data faces wrote from a clip dataset says so (one label per clip, its own classes).
        self.declared = read_dataset_declaration(self.root)
        self._videos: dict[tuple[str, str], list[AnnotatedVideo]] = {}
        self._crop_numbers: dict[str, tuple[Path | None, set[int]]] = {}
        self._video_lengths: dict[Path, int | None] = {}
        if not self.tree.crop_roots:
            self._warn(DataWarning(str(self.root), "no cropped_aligned* folder: no frame has a face crop"))

    # --- public API -------------------------------------------------------------------------
    @property
    def layout(self) -> str:
        """``"abaw2020"``, ``"abaw3"`` (ABAW 3-5) or ``"abaw6"`` (ABAW 6 onwards)."""
        return self.tree.layout  # type: ignore[return-value]

    @property
    def tasks(self) -> tuple[str, ...]:
        """Tasks with an annotation folder, in ``("VA", "EXPR", "AU")`` order."""
        return tuple(t for t in TASKS if t in self.tree.task_dirs)

    @property
    def label_level(self) -> str:
        """``"frame"`` (Aff-Wild2), or ``"clip"`` for a tree ``data faces`` wrote from a clip dataset."""
        return self.declared.get("label_level", "frame")

    @property
    def notes(self) -> list[str]:
        """What the inspect report says about the tree beyond its counts (a clip dataset's crop tree)."""
        source = self.declared.get("source_layout")
        if self.label_level != "clip":
            return []
        return [f"face crops of a {source or 'clip'} dataset (written by data faces): one label per clip, "
                f"classes {', '.join(self.expr_classes)}"]

    @property
    def has_crops(self) -> bool:
        """Whether the tree has ``cropped_aligned`` crops (else its faces come from its raw videos)."""
        return bool(self.tree.crop_roots)

    def splits(self, task: str) -> tuple[str, ...]:
        """Split folder names of ``task`` as found on disk (e.g. ``Train_Set``, ``Validation_Set``)."""
        return tuple(self.tree.splits(normalise_task(task)))

    @property
    def expr_classes(self) -> tuple[str, ...]:
        """The EXPR label space: 7 classes for ABAW 2020, 8 (with Other) from ABAW 3; or the classes the
        tree declares (written by ``data faces`` from a clip dataset)."""
        if self.declared.get("expr_classes"):
            return self.declared["expr_classes"]
        return labels.EXPR_CLASSES_7 if self.layout == "abaw2020" else labels.EXPR_CLASSES_8

    def videos(self, task: str, split: str) -> list[AnnotatedVideo]:
        """Every annotated video (person) of a task and split, sorted by ``video_id``."""
        task = normalise_task(task)
        key = (task, split)
        if key not in self._videos:
            folders = self.tree.splits(task)
            if split not in folders:
                raise InputError(self.tree.task_dirs.get(task, self.root),
                                 f"no split {split!r} for {task} (found: {', '.join(folders) or 'none'})")
            self._videos[key] = self._index_split(task, split, folders[split])
        return self._videos[key]

    def index_all(self) -> None:
        """Parse every task and split now (so :attr:`warnings` is complete)."""
        for task in self.tasks:
            for split in self.splits(task):
                self.videos(task, split)

    def frame_set(self, task: str, split: str, annotated_only: bool = False) -> CropFrameSet:
        """The frames of a task and split that have a face crop, as a lazily loading :class:`CropFrameSet`.

        Only ``task``'s label array is set (the others are None); unannotated
        frames are included with -1/NaN labels unless ``annotated_only``.
        Items carry ``video_ids`` and ``frame_idx``.
        """
        task = normalise_task(task)
        crop_dirs: list[str] = []
        names: list[str] = []
        label_parts: list[np.ndarray] = []
        pos_parts: list[np.ndarray] = []
        frame_parts: list[np.ndarray] = []
        for video in self.videos(task, split):
            keep = video.has_face & video.annotated if annotated_only else video.has_face
            idx = np.flatnonzero(keep)
            if not idx.size:
                continue
            pos_parts.append(np.full(idx.size, len(crop_dirs), np.int32))
            crop_dirs.append(str(video.crop_dir))
            names.append(video.video_id)
            label_parts.append(video.labels[idx])
            frame_parts.append(idx)
        empty = {"VA": np.zeros((0, 2), np.float32), "EXPR": np.zeros(0, np.int64),
                 "AU": np.zeros((0, len(labels.AU_NAMES)), np.int8)}[task]
        y = np.concatenate(label_parts) if label_parts else empty
        return CropFrameSet(
            name=f"{self.root.name}/{task}/{split}",
            crop_dirs=np.array(crop_dirs, dtype=np.str_),
            video_names=np.array(names, dtype=np.str_),
            video_pos=np.concatenate(pos_parts) if pos_parts else np.zeros(0, np.int32),
            frame_idx=np.concatenate(frame_parts) if frame_parts else np.zeros(0, np.int64),
            expr_classes=self.expr_classes if task == "EXPR" else (),
            expr=y if task == "EXPR" else None,
            va=y if task == "VA" else None,
            au=y if task == "AU" else None,
            label_level=self.label_level,
        )

    # --- indexing ---------------------------------------------------------------------------
    def _warn(self, warning: DataWarning, count: int = 1) -> None:
        if self.strict:
            raise InputError(warning.path, warning.problem, warning.line)
        self.warnings.append(warning)
        self.n_problems += count

    def _index_split(self, task: str, split: str, folder: Path) -> list[AnnotatedVideo]:
        from affectseq.utils.progress import track

        videos = []
        for path in track(sorted(p for p in folder.glob("*.txt") if not p.name.startswith(".")),
                          f"indexing {task}/{split}"):  # skips macOS ._ resource files
            video = self._index_file(task, split, path)
            if video is not None:
                videos.append(video)
        return videos

    def _index_file(self, task: str, split: str, path: Path) -> AnnotatedVideo | None:
        try:
            parsed = parse_annotation(path, task, self.declared.get("expr_classes", ()))
        except AnnotationFileError as err:
            self._warn(err.warning)  # the file is skipped; the rest of the split is indexed
            return None
        for problem in parsed.problems:
            self._warn(problem)
        unlisted = parsed.n_problems - len(parsed.problems)
        if unlisted:  # counted in full, listed in part: a broken file must not flood the report
            self.n_problems += unlisted
            self.warnings.append(DataWarning(str(path), f"... and {unlisted} more problem rows, not listed"))
        video_id = path.stem
        source = self.tree.source_video(video_id)
        crop_dir, numbers = self._crops(video_id, path)
        n = parsed.n_rows
        has_face = np.zeros(n, dtype=bool)
        if numbers:
            rows = np.fromiter((i for i in numbers if 1 <= i <= n), dtype=np.int64)
            has_face[rows - 1] = True
        valid = parsed.valid
        if task == "EXPR" and len(parsed.expr_classes) > len(self.expr_classes):
            # An 8-class file in an ABAW 2020 (7-class) tree: Other has no place there.
            other = valid & (parsed.labels >= len(self.expr_classes))
            if other.any():
                self._warn(DataWarning(str(path), f"{int(other.sum())} rows labelled Other, which the 7-class "
                                                  "ABAW 2020 label space lacks: masked unannotated",
                                       int(np.flatnonzero(other)[0]) + 2))
                valid = valid & ~other
        if source is not None and self.check_video_lengths:
            n_video = self._video_length(source, path)
            if n_video is not None and n > n_video:
                self._warn(DataWarning(str(path), f"annotation has {n} frame rows but {source.name} has "
                                                  f"{n_video} frames; rows {n_video + 1}.. masked unannotated",
                                       n_video + 2))
                valid = valid.copy()
                valid[n_video:] = False
        return AnnotatedVideo(
            video_id=video_id, task=task, split=split, annotation_path=path, source_video=source,
            crop_dir=crop_dir, n_frames=n, labels=_mask_invalid(parsed.labels, valid), label_valid=valid,
            has_face=has_face, expr_classes=parsed.expr_classes, au_columns=parsed.au_columns,
            fps=crop_folder_fps(crop_dir) if crop_dir is not None else None,
        )

    def _crops(self, video_id: str, annotation: Path) -> tuple[Path | None, set[int]]:
        if video_id not in self._crop_numbers:
            crop_dir = next((r / video_id for r in self.tree.crop_roots if (r / video_id).is_dir()), None)
            self._crop_numbers[video_id] = (crop_dir, crop_frame_numbers(crop_dir) if crop_dir else set())
            if crop_dir is None and self.tree.crop_roots:
                roots = ", ".join(r.name for r in self.tree.crop_roots)
                self._warn(DataWarning(str(annotation), f"no crop folder {video_id}/ in {roots}: "
                                                        "no frame of this video has a face crop"))
        return self._crop_numbers[video_id]

    def _video_length(self, source: Path, annotation: Path) -> int | None:
        # Imported here: io is only needed when raw videos are present.
        from affectseq.io.video import header_frame_count

        if source not in self._video_lengths:
            try:
                self._video_lengths[source] = header_frame_count(source)
            except InputError as err:
                self._video_lengths[source] = None
                self._warn(DataWarning(str(source), f"raw video of {annotation.name} unreadable: {err.problem}"))
        return self._video_lengths[source]


def _mask_invalid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Canonical 'unannotated' encodings wherever ``valid`` is False."""
    if values.dtype.kind == "f":
        out = values.copy()
        out[~valid] = np.nan
        return out
    out = values.copy()
    out[~valid] = -1
    return out
