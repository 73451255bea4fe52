"""One progress-bar style for every long stage (rich), silent when not on a terminal or when asked."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


def make_progress(disable: bool | None = None) -> Progress:
    """A rich ``Progress`` with count, elapsed time and ETA columns; disabled when stderr is not a TTY."""
    if disable is None:
        disable = not sys.stderr.isatty()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=disable,
        transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None, disable: bool | None = None) -> Iterator[T]:
    """Iterate over ``items`` with a progress bar (see :func:`make_progress`)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress(disable) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)
