"""Parsing one Aff-Wild2/ABAW annotation file into canonical labels plus validity masks.

A file is one header line, then one row per video frame: data row i (1-based,
line i + 1 of the file) belongs to ``frame_idx`` i - 1 and crop ``<i:05d>.jpg``.
A malformed row never shifts the rows after it: it stays a frame whose label
is marked invalid, and the problem is reported with its file and line.

Per task (canonical encodings of :mod:`affectseq.labels`):

* ``VA``: header ``valence,arousal``; floats in [-1, 1], ``-5`` = unannotated
  -> float32 (n, 2), NaN where invalid;
* ``EXPR``: header ``Neutral,...,Surprise`` (7) or ``...,Other`` (8); one int,
  ``-1`` = unannotated -> int64 (n,);
* ``AU``: header a subset of :data:`affectseq.labels.AU_NAMES` (ABAW 2020: 8,
  ABAW 3+: 12); 0/1, ``-1`` = unannotated -> int8 (n, 13) over the 13-AU union,
  AUs the file does not have are ``-1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affectseq import labels

TASKS: tuple[str, ...] = ("VA", "EXPR", "AU")
VA_UNANNOTATED = -5.0
MAX_PROBLEMS_PER_FILE = 20  # detail kept per file; the rest are counted


@dataclass(frozen=True)
class DataWarning:
    """A problem found while indexing a dataset: ``path[:line]: problem``."""

    path: str
    problem: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.problem}"


@dataclass
class ParsedAnnotation:
    """Labels of one file in canonical encoding; ``valid`` is (n,) or (n, 13) for AU."""

    task: str
    n_rows: int
    labels: np.ndarray
    valid: np.ndarray
    expr_classes: tuple[str, ...] = ()
    au_columns: tuple[str, ...] = ()  # AUs the file annotates (its header)
    problems: list[DataWarning] = field(default_factory=list)
    n_problems: int = 0  # all problems, including those beyond MAX_PROBLEMS_PER_FILE


class AnnotationFileError(Exception):
    """The file cannot be used at all (unreadable, empty, wrong header); carries the DataWarning."""

    def __init__(self, warning: DataWarning):
        self.warning = warning
        super().__init__(str(warning))


def _header_columns(line: str) -> list[str]:
    return [c.strip() for c in line.strip().lstrip("\ufeff").split(",")]


def check_header(task: str, header: str, expr_classes: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Column names of a valid header for ``task``; raises ValueError explaining what was expected.

    ``expr_classes``: a class list the tree declares (``data faces`` of a clip dataset with its own
    classes), accepted as an EXPR header besides the ABAW ones.
    """
    cols = _header_columns(header)
    if task == "VA":
        if [c.lower() for c in cols] != list(labels.VA_DIMS):
            raise ValueError(f"wrong header {header.strip()!r}: expected 'valence,arousal'")
        return tuple(labels.VA_DIMS)
    if task == "EXPR":
        accepted = (labels.EXPR_CLASSES_7, labels.EXPR_CLASSES_8) + ((tuple(expr_classes),) if expr_classes else ())
        if tuple(cols) not in accepted:
            raise ValueError(f"wrong header {header.strip()!r}: expected '{','.join(labels.EXPR_CLASSES_7)}'"
                             " (ABAW 2020) or the same with ',Other' (ABAW 3+)")
        return tuple(cols)
    if task == "AU":
        unknown = [c for c in cols if c.upper() not in labels.AU_NAMES]
        names = [c.upper() for c in cols]
        if unknown or len(set(names)) != len(names) or not names:
            raise ValueError(f"wrong header {header.strip()!r}: expected AU names from {','.join(labels.AU_NAMES)}")
        return tuple(names)
    raise ValueError(f"unknown task {task!r}")


def parse_annotation(path: Path, task: str, expr_classes: tuple[str, ...] = ()) -> ParsedAnnotation:
    """Parse one annotation file; unusable files raise :class:`AnnotationFileError`.

    ``expr_classes``: an EXPR header the tree declares besides ABAW's (see :func:`check_header`).
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise AnnotationFileError(DataWarning(str(path), f"unreadable annotation file ({err.strerror})")) from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # trailing blank lines are not frames
    if not lines:
        raise AnnotationFileError(DataWarning(str(path), "empty annotation file (no header)", 1))
    try:
        columns = check_header(task, lines[0], expr_classes)
    except ValueError as err:
        raise AnnotationFileError(DataWarning(str(path), str(err), 1)) from None
    rows = lines[1:]
    if not rows:
        raise AnnotationFileError(DataWarning(str(path), "annotation file has a header but no frame rows", 1))
    # EXPR headers name the classes but every row holds one class index.
    values, bad = _parse_numbers(rows, 1 if task == "EXPR" else len(columns))
    parsed = _to_canonical(task, columns, values)
    problems: list[str | None] = bad
    _range_problems(task, columns, values, parsed, problems)
    result = parsed
    for i, problem in enumerate(problems):
        if problem is None:
            continue
        result.n_problems += 1
        if len(result.problems) < MAX_PROBLEMS_PER_FILE:
            result.problems.append(DataWarning(str(path), problem, i + 2))
    return result


def _parse_numbers(rows: list[str], n_cols: int) -> tuple[np.ndarray, list[str | None]]:
    """Rows as float64 (n, n_cols), NaN for unparseable rows, plus a per-row problem (or None)."""
    n = len(rows)
    problems: list[str | None] = [None] * n
    fast = _parse_fast(rows, n_cols)
    if fast is not None:
        return fast, problems
    split = [r.split(",") for r in rows]
    values = np.full((n, n_cols), np.nan)
    for i, cells in enumerate(split):
        if len(cells) != n_cols:
            problems[i] = f"expected {n_cols} columns, found {len(cells)} in {rows[i].strip()!r}"
            continue
        try:
            row = [float(c) for c in cells]
        except ValueError:
            problems[i] = f"non-numeric value in {rows[i].strip()!r}"
            continue
        if not all(np.isfinite(row)):
            problems[i] = f"non-finite value in {rows[i].strip()!r}"
            continue
        values[i] = row
    return values, problems


def _parse_fast(rows: list[str], n_cols: int) -> np.ndarray | None:
    """All rows at C speed (Aff-Wild2 has millions), or None when any row is malformed.

    Blank lines are kept (as NaN rows) so that nothing shifts; any NaN, short or
    long row sends the caller to the row-by-row path, which names each bad line.
    """
    import io

    import pandas as pd

    try:
        table = pd.read_csv(io.StringIO("\n".join(rows)), header=None, dtype=np.float64, skip_blank_lines=False,
                            engine="c")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    values = table.to_numpy(dtype=np.float64)
    if values.shape != (len(rows), n_cols) or not np.isfinite(values).all():
        return None
    return values


def _to_canonical(task: str, columns: tuple[str, ...], values: np.ndarray) -> ParsedAnnotation:
    n = len(values)
    parseable = ~np.isnan(values).any(axis=1)
    if task == "VA":
        in_range = (values >= -1.0) & (values <= 1.0)
        valid = parseable & in_range.all(axis=1)
        va = np.where(valid[:, None], values, np.nan).astype(np.float32)
        return ParsedAnnotation(task, n, va, valid)
    if task == "EXPR":
        col = values[:, 0]
        integral = parseable & (np.round(np.nan_to_num(col)) == np.nan_to_num(col))
        valid = integral & (col >= 0) & (col < len(columns))
        expr = np.where(valid, np.nan_to_num(col), labels.EXPR_UNANNOTATED).astype(np.int64)
        return ParsedAnnotation(task, n, expr, valid, expr_classes=columns)
    au = np.full((n, len(labels.AU_NAMES)), labels.AU_UNANNOTATED, dtype=np.int8)
    valid = np.zeros((n, len(labels.AU_NAMES)), dtype=bool)
    for j, name in enumerate(columns):
        col = values[:, j]
        ok = parseable & ((col == 0) | (col == 1))
        k = labels.AU_NAMES.index(name)
        au[ok, k] = col[ok].astype(np.int8)
        valid[:, k] = ok
    return ParsedAnnotation(task, n, au, valid, au_columns=columns)


def _range_problems(task: str, columns: tuple[str, ...], values: np.ndarray, parsed: ParsedAnnotation,
                    problems: list[str | None]) -> None:
    """Flag parseable rows whose values are neither valid labels nor the unannotated marker."""
    parseable = ~np.isnan(values).any(axis=1)
    if task == "VA":
        marker = (values == VA_UNANNOTATED).any(axis=1)
        out = parseable & ~parsed.valid & ~marker
        partial = parseable & marker & ~(values == VA_UNANNOTATED).all(axis=1)
        what = "valence/arousal outside [-1, 1] (-5 marks unannotated)"
    elif task == "EXPR":
        out = parseable & ~parsed.valid & (values[:, 0] != labels.EXPR_UNANNOTATED)
        partial = np.zeros_like(out)
        what = f"expression must be an integer in 0..{len(columns) - 1} (-1 marks unannotated)"
    else:
        ok_cells = np.isin(values, (0.0, 1.0, float(labels.AU_UNANNOTATED)))
        out = parseable & ~ok_cells.all(axis=1)
        partial = np.zeros_like(out)
        what = "AU values must be 0, 1 or -1 (unannotated)"
        # Cells that are not 0/1 are already masked invalid per AU by _to_canonical.
    for i in np.flatnonzero(out):
        problems[i] = f"{what}: {','.join(_fmt(v) for v in values[i])}"
    for i in np.flatnonzero(partial):
        if problems[i] is None:
            problems[i] = f"only one of valence/arousal is -5 (unannotated): {','.join(_fmt(v) for v in values[i])}"


def _fmt(value: float) -> str:
    return f"{value:g}"
