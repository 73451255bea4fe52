"""Build a folder under a temporary name, then publish it without ever deleting what is not ours.

:func:`atomic_path` (``affectseq.utils.atomic``) replaces whatever sits at the
target. For output folders named after users' files that is too trusting: the
target might be the user's own folder. Here:

* :func:`partial_dir` makes ``PARENT/.affectseq-partial-<random>`` (a short name
  whatever the final name's length) and deletes it if the block fails;
* :func:`publish_dir` moves it to the target only if the target is absent, or is a
  real folder that ``is_ours(target)`` recognises as an earlier result for the
  same input; anything else raises :class:`~affectseq.errors.InputError` and is
  left exactly as it was. Given ``owned(target)`` (the names an earlier run wrote
  there, from its own manifest), an earlier folder is updated file by file: only
  those names are replaced or removed, and any other file a user put there stays;
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
    # Private while it is built (nobody can plant a link in it); mkdir never follows a link at ``tmp``.
    tmp.mkdir(mode=0o700)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_DIR_MODE = 0o777 & ~_umask()  # what a plain mkdir gives published folders


def publish_dir(tmp: Path, target: Path, is_ours: Callable[[Path], bool],
                owned: Callable[[Path], set[str]] | None = None, last: str | None = None) -> None:
    """Move the finished folder ``tmp`` to ``target``, replacing only an earlier folder of ours.

    ``tmp`` is removed on failure. Without ``owned``, the old folder is moved aside
    before the new one goes in and deleted only after, so a crash between the two
    renames loses no new result and never a foreign file (the next run redoes it).
    With ``owned`` (the file names the earlier run wrote into ``target``), the earlier
    folder stays and only those files are replaced or removed, ``last`` (the
    completion marker) replaced last; a file of ``tmp`` whose name holds a file we
    did not write raises InputError before anything moves.
    """
    try:
        if target.is_symlink() or (target.exists() and not (target.is_dir() and is_ours(target))):
            raise InputError(target, "exists and was not written by affectseq for this video; left untouched")
        os.chmod(tmp, _DIR_MODE)
        if owned is not None and target.exists():
            _update_in_place(tmp, target, owned(target), last)
            return
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


def _update_in_place(tmp: Path, target: Path, ours_before: set[str], last: str | None) -> None:
    """Replace ``target``'s files by ``tmp``'s, drop the ones of ``ours_before`` no longer written."""
    ours_before = {name for name in ours_before if name and name == Path(name).name and name not in (".", "..")}
    new = sorted(os.listdir(tmp))
    for name in new:
        there = target / name
        if os.path.lexists(there) and (name not in ours_before or there.is_symlink() or not there.is_file()):
            raise InputError(there, "exists and was not written by affectseq for this video; left untouched "
                                    "(move it out of the folder, or choose another output folder)")
    for name in new:
        if name != last:
            os.replace(tmp / name, target / name)
    for gone in sorted(ours_before - set(new)):  # ours, not written this time (e.g. an overlay no longer asked for)
        stale = target / gone
        if stale.is_file() and not stale.is_symlink():
            stale.unlink()
    if last in new:
        os.replace(tmp / last, target / last)
    tmp.rmdir()


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
