"""Users' own recordings: videos with per-frame labels in a CSV beside each video.

Layout: ``root/<name>.<mp4|avi|mov|mkv|webm|...>`` with ``root/<name>.csv``, or the
same inside split folders (``root/train/``, ``root/val/``, ...). CSV columns
(header required, names case-insensitive, any order, extra columns ignored):

* ``frame_idx`` (required): 0-based frame index in decode order, as
  :class:`affectseq.io.video.VideoReader` numbers frames. Frames not listed are
  unannotated; rows need not be sorted;
* ``expression`` (or ``expr``/``emotion``): a class name (``happy``,
  ``Happiness``, ``contempt`` -> Other, ...) or an integer index of
  :data:`affectseq.labels.EXPR_CLASSES_8` (Aff-Wild2 order); empty or ``-1`` =
  unannotated;
* ``valence`` and ``arousal``: floats in [-1, 1]; empty or ``-5`` = unannotated;
* AU columns named as in :data:`affectseq.labels.AU_NAMES` (``AU1``, ``AU12``, ...):
  0/1; empty or ``-1`` = unannotated.

Each (video, task) becomes an :class:`~affectseq.data.abaw.AnnotatedVideo` of
``n_frames`` = the video's frame count (container estimate), labels aligned to
``frame_idx``. These videos have no face crops yet (``has_face`` is all False,
``crop_dir`` None): run face extraction on the raw video first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from affectseq import labels
from affectseq.data.abaw import AnnotatedVideo, normalise_task
from affectseq.data.abaw_annotations import DataWarning
from affectseq.errors import InputError
from affectseq.io.video import VIDEO_SUFFIXES
from affectseq.utils.fsguard import require_regular_file

FRAME_COLUMN = "frame_idx"
EXPR_COLUMNS: tuple[str, ...] = ("expression", "expr", "emotion")
VA_COLUMNS: tuple[str, ...] = ("valence", "arousal")
MAX_PROBLEMS_PER_FILE = 20


DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(csv: Path) -> str:
    """The delimiter of a label CSV: the one among ``, ; TAB |`` that splits its header into a ``frame_idx``
    column (spreadsheets in many locales save ``;``); ``,`` when none does (the header check then says so)."""
    try:
        with open(csv, encoding="utf-8-sig", errors="replace") as fh:
            header = fh.readline()
    except OSError:
        return ","
    for sep in DELIMITERS:
        if FRAME_COLUMN in (cell.strip().strip('"').lower() for cell in header.split(sep)):
            return sep
    return ","


def _pairs_in(folder: Path) -> list[tuple[Path, Path]]:
    videos = {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES}
    return [(videos[p.stem], p) for p in sorted(folder.glob("*.csv")) if p.stem in videos]


def find_pairs(root: str | os.PathLike[str]) -> dict[str, list[tuple[Path, Path]]]:
    """``{split: [(video, csv), ...]}``: pairs in ``root`` itself (split = root's name) or in its sub-folders."""
    root = Path(root)
    if not root.is_dir():
        return {}
    direct = _pairs_in(root)
    if direct:
        return {root.name: direct}
    found = {d.name: _pairs_in(d) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    return {name: pairs for name, pairs in found.items() if pairs}


def is_video_csv(path: Path) -> bool:
    """A folder of video + per-frame CSV pairs (the registry's test)."""
    return path.is_dir() and bool(find_pairs(path))


class VideoCsvDataset:
    """Videos with per-frame CSV labels, with the same ``tasks``/``splits``/``videos`` API as AbawDataset."""

    layout = "video_csv"
    label_level = "frame"
    has_crops = False  # faces come from the videos (data faces, or extraction straight from them)
    expr_classes = labels.EXPR_CLASSES_8

    def __init__(self, root: str | os.PathLike[str], strict: bool = False):
        self.root = Path(root)
        self.strict = strict
        self.pairs = find_pairs(self.root)
        if not self.pairs:
            raise InputError(self.root, "no <name>.<video> + <name>.csv pairs found")
        self.warnings: list[DataWarning] = []
        self.n_problems = 0
        self._parsed: dict[str, list[dict[str, AnnotatedVideo]]] = {}
        for split, pairs in self.pairs.items():
            self._parsed[split] = [v for v in (self._parse(split, video, csv) for video, csv in pairs) if v]

    @property
    def tasks(self) -> tuple[str, ...]:
        """Tasks with a label column in at least one CSV, in ``("VA", "EXPR", "AU")`` order."""
        present = {task for videos in self._parsed.values() for per_task in videos for task in per_task}
        return tuple(t for t in ("VA", "EXPR", "AU") if t in present)

    def splits(self, task: str) -> tuple[str, ...]:
        """Splits with at least one video labelled for ``task``."""
        task = normalise_task(task)
        return tuple(s for s, videos in self._parsed.items() if any(task in v for v in videos))

    def videos(self, task: str, split: str) -> list[AnnotatedVideo]:
        """The videos of a split labelled for ``task``."""
        task = normalise_task(task)
        if split not in self._parsed:
            raise InputError(self.root, f"no split {split!r} (found: {', '.join(self._parsed)})")
        return [v[task] for v in self._parsed[split] if task in v]

    def _warn(self, path: Path, problem: str, line: int | None = None) -> None:
        if self.strict:
            raise InputError(path, problem, line)
        self.warnings.append(DataWarning(str(path), problem, line))
        self.n_problems += 1

    def _open(self, video: Path, csv: Path) -> tuple[int, Any] | None:
        """``(n_frames, table)`` of a pair, or None (warned) when the video or the CSV cannot be used."""
        import pandas as pd

        from affectseq.io.video import header_frame_count

        try:
            n_frames = header_frame_count(video)
        except InputError as err:
            self._warn(video, f"video unreadable, its labels are skipped: {err.problem}")
            return None
        try:
            require_regular_file(csv, "label CSV")  # a FIFO named a.csv would block read_csv for ever
        except InputError as err:
            self._warn(csv, err.problem)
            return None
        try:
            # Blank lines are kept so that row r is always line r + 2 of the file.
            table = pd.read_csv(csv, dtype=str, skip_blank_lines=False, keep_default_na=False,
                                sep=sniff_delimiter(csv))
        except (ValueError, OSError, pd.errors.ParserError) as err:
            self._warn(csv, f"unreadable CSV ({err})")
            return None
        table.columns = [str(c).strip().lower() for c in table.columns]
        if FRAME_COLUMN not in table.columns:
            self._warn(csv, f"no {FRAME_COLUMN!r} column (columns: {', '.join(table.columns)})", 1)
            return None
        return n_frames, table

    def _parse(self, split: str, video: Path, csv: Path) -> dict[str, AnnotatedVideo]:
        opened = self._open(video, csv)
        if opened is None:
            return {}
        n_frames, table = opened
        au_cols = {c: c.upper() for c in table.columns if c.upper() in labels.AU_NAMES}
        for c in table.columns:
            if c.startswith("au") and c[2:].isdigit() and c not in au_cols:
                self._warn(csv, f"column {c!r} is not one of the 13 AUs ({', '.join(labels.AU_NAMES)}); ignored", 1)
        expr_col = next((c for c in EXPR_COLUMNS if c in table.columns), None)
        has_va = all(c in table.columns for c in VA_COLUMNS)
        expr = np.full(n_frames, labels.EXPR_UNANNOTATED, np.int64)
        va = np.full((n_frames, 2), np.nan, np.float32)
        au = np.full((n_frames, len(labels.AU_NAMES)), labels.AU_UNANNOTATED, np.int8)
        seen: set[int] = set()
        problems = 0

        def problem(text: str, line: int) -> None:
            nonlocal problems
            problems += 1
            if problems <= MAX_PROBLEMS_PER_FILE:
                self._warn(csv, text, line)
            else:
                self.n_problems += 1

        for r, row in enumerate(table.itertuples(index=False)):
            line = r + 2
            cells = dict(zip(table.columns, (str(x).strip() for x in row)))
            if not any(cells.values()):
                continue  # blank line
            try:
                frame_idx = int(cells[FRAME_COLUMN])
            except ValueError:
                problem(f"frame_idx {cells[FRAME_COLUMN]!r} is not an integer", line)
                continue
            if not 0 <= frame_idx < n_frames:
                problem(f"frame_idx {frame_idx} outside the video's {n_frames} frames ({video.name})", line)
                continue
            if frame_idx in seen:
                problem(f"frame_idx {frame_idx} listed twice; the first row is kept", line)
                continue
            seen.add(frame_idx)
            for text in _read_row(cells, frame_idx, expr_col, has_va, au_cols, expr, va, au):
                problem(text, line)
        return self._annotated(split, video, csv, expr if expr_col is not None else None, va if has_va else None,
                               au if au_cols else None, tuple(au_cols.values()))

    def _annotated(self, split: str, video: Path, csv: Path, expr: np.ndarray | None, va: np.ndarray | None,
                   au: np.ndarray | None, au_columns: tuple[str, ...]) -> dict[str, AnnotatedVideo]:
        """One :class:`AnnotatedVideo` per task the CSV has a column for (warned when it has none)."""
        n_frames = len(next(a for a in (expr, va, au, np.zeros(0)) if a is not None))
        common = dict(video_id=csv.stem, split=split, annotation_path=csv, source_video=video, crop_dir=None,
                      n_frames=n_frames, has_face=np.zeros(n_frames, bool))
        out: dict[str, AnnotatedVideo] = {}
        if expr is not None:
            out["EXPR"] = AnnotatedVideo(task="EXPR", labels=expr, label_valid=expr >= 0,
                                         expr_classes=self.expr_classes, **common)
        if va is not None:
            out["VA"] = AnnotatedVideo(task="VA", labels=va, label_valid=~np.isnan(va).any(axis=1), **common)
        if au is not None:
            out["AU"] = AnnotatedVideo(task="AU", labels=au, label_valid=au >= 0, au_columns=au_columns, **common)
        if not out:
            self._warn(csv, "no label columns (expression, valence+arousal or AU*)", 1)
        return out


def _read_row(cells: dict[str, str], frame_idx: int, expr_col: str | None, has_va: bool, au_cols: dict[str, str],
              expr: np.ndarray, va: np.ndarray, au: np.ndarray) -> list[str]:
    """Store one CSV row's labels at ``frame_idx`` in ``expr``/``va``/``au``; the row's problems, as text."""
    problems = []
    if expr_col is not None:
        value = _expr_value(cells[expr_col])
        if value is None:
            problems.append(f"expression {cells[expr_col]!r} is not a class name or 0..7")
        else:
            expr[frame_idx] = value
    if has_va:
        try:
            pair = [float(cells[c].replace(",", ".")) if cells[c] else -5.0 for c in VA_COLUMNS]  # 0,5 too
        except ValueError:
            problems.append(f"valence/arousal not numeric: {cells['valence']!r},{cells['arousal']!r}")
            pair = [-5.0, -5.0]
        if all(-1.0 <= p <= 1.0 for p in pair):
            va[frame_idx] = pair
        elif any(p != -5.0 for p in pair):
            problems.append(f"valence/arousal outside [-1, 1]: {pair[0]:g},{pair[1]:g}")
    for col, name in au_cols.items():
        text = cells[col]
        if text in ("0", "1", "0.0", "1.0"):
            au[frame_idx, labels.AU_NAMES.index(name)] = int(float(text))
        elif text not in ("", "-1"):
            problems.append(f"{name} must be 0, 1 or -1, got {text!r}")
    return problems


def _expr_value(text: str) -> int | None:
    """Canonical 8-class index of an expression cell, -1 when empty/unannotated, None when invalid."""
    if text in ("", "-1"):
        return labels.EXPR_UNANNOTATED
    if text.lstrip("-").isdigit():
        value = int(text)
        return value if 0 <= value < len(labels.EXPR_CLASSES_8) else None
    return labels.expr_index(text, 8)
