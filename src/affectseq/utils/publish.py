"""Build a folder under a temporary name, then publish it without ever deleting what is not ours.

:func:`atomic_path` (``affectseq.utils.atomic``) replaces whatever sits at the
target. For output folders named after users' files that is too trusting: the
target might be the user's own folder. Here:

* :func:`partial_dir` makes ``PARENT/.affectseq-partial-<random>`` (a short name
  whatever the final name's length) and deletes it if the block fails;
* :func:`publish_dir` moves it to the target only if the target is absent, or is a
  real folder that ``is_ours(target)`` recognises as an earlier result for the
  same input; anything else raises :class:`~affectseq.errors.InputError` and is
  left exactly as it was;
* :func:`remove_partials` clears temporary folders a killed run left. Call it only
  while holding the folder's lock (``affectseq.utils.lock``), so another run's
  folder in progress is never taken for a leftover.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable, Iterator

from affectseq.errors import InputError

PARTIAL_PREFIX = ".affectseq-partial-"
_OLD_PREFIX = ".affectseq-old-"


@contextlib.contextmanager
def partial_dir(parent: str | os.PathLike[str]) -> Iterator[Path]:
    """A new empty temporary folder in ``parent``; removed if the block raises (Ctrl-C included)."""
    root = Path(parent)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{PARTIAL_PREFIX}{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish_dir(tmp: Path, target: Path, is_ours: Callable[[Path], bool]) -> None:
    """Move the finished folder ``tmp`` to ``target``, replacing only an earlier folder of ours.

    ``tmp`` is removed on failure. The old folder is moved aside before the new one
    goes in and deleted only after, so a crash between the two renames loses no
    new result and never a foreign file (the next run redoes the video).
    """
    try:
        if target.is_symlink() or (target.exists() and not (target.is_dir() and is_ours(target))):
            raise InputError(target, "exists and was not written by affectseq for this video; left untouched")
        old = None
        if target.exists():
            old = target.parent / f"{_OLD_PREFIX}{secrets.token_hex(6)}"
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_partials(parent: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary folders (partial or replaced) that a killed run left in ``parent``.

    Only entries with affectseq's own prefixes, and only real folders (no symlinks)
    are removed. Returns what was removed.
    """
    removed = []
    for entry in Path(parent).iterdir():
        if entry.name.startswith((PARTIAL_PREFIX, _OLD_PREFIX)) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
