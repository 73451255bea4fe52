"""One progress-bar style for every long stage (rich), silent when not on a terminal or when asked."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from affectseq.utils.naming import display_name

T = TypeVar("T")


class DescriptionColumn(TextColumn):
    """A task's description as literal, printable text: it is often a user's file name.

    Not rich markup (``a[/x]b.mp4`` would raise, ``[bold]x.mp4`` lose its brackets),
    and undecodable bytes are shown as U+FFFD (a strict console would raise on them).
    """

    def __init__(self) -> None:
        super().__init__("{task.description}", style="bold", markup=False)

    def render(self, task: Task) -> Text:
        return Text(display_name(str(task.description)), style=self.style)


def make_progress(disable: bool | None = None) -> Progress:
    """A rich ``Progress`` with count, elapsed time and ETA columns; disabled when stderr is not a TTY."""
    if disable is None:
        disable = not sys.stderr.isatty()
    return Progress(
        DescriptionColumn(),
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
