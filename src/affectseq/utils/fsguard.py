"""Checks on the files and folders affectseq reads from or writes into a user's tree.

* :func:`require_regular_file` -- ``stat`` an input *before* opening it: a FIFO, a
  device or a socket would block (or never end) on ``open``, and a folder named like
  a video is not one. Each is one :class:`~affectseq.errors.InputError` line, so the
  caller can go on with the next input.
* :func:`real_dir` -- create (or find) a folder affectseq writes into and refuse it
  when it is a symbolic link: a link planted in an output tree (``OUT/crops ->
  /elsewhere``) must not send our writes outside that tree.
* :func:`open_no_follow` -- ``os.open`` with ``O_NOFOLLOW`` (and ``O_NONBLOCK`` so a
  planted FIFO does not hang us), refusing anything but a regular file, for the
  files affectseq creates under fixed names (lock files).

Temporary files and folders get random names inside a private (0700) folder or are
created with ``O_EXCL`` (``affectseq.utils.atomic``, ``affectseq.utils.publish``),
so nothing can be planted where they are written.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from affectseq.errors import InputError

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def kind_of(mode: int) -> str:
    """``"a FIFO (named pipe)"``, ``"a folder"``, ... for a ``st_mode``; ``"a regular file"`` otherwise."""
    return next((name for test, name in _KINDS if test(mode)), "a regular file")


def not_a_file(mode: int, what: str = "input") -> str:
    """The problem text for a path that is not a regular file: ``"not a file but a FIFO (named pipe)..."``."""
    return f"not a file but {kind_of(mode)}; not opened as a {what}"


def require_regular_file(path: str | os.PathLike[str], what: str = "input") -> os.stat_result:
    """``os.stat(path)`` when it is a regular file (links followed); InputError otherwise, nothing opened."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(path, f"{what} file not found") from None
    except OSError as err:
        raise InputError(path, f"cannot read {what} file ({err.strerror or err})") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(path, not_a_file(info.st_mode, what))
    return info


def is_special_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` exists and is neither a regular file nor a folder (FIFO, device, socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def refuse_link(path: str | os.PathLike[str], what: str = "file") -> None:
    """InputError when ``path`` is a symbolic link (affectseq never writes through one)."""
    if os.path.islink(path):
        raise InputError(path, f"is a symbolic link where affectseq keeps its own {what}; "
                               "affectseq does not write through links in its folders: remove it")


def real_dir(path: str | os.PathLike[str], what: str = "folder", root: str | os.PathLike[str] | None = None
             ) -> Path:
    """Create ``path`` (and parents) if needed; InputError when it is a symbolic link or not a folder.

    With ``root`` (an ancestor of ``path``: the output folder the user chose), every
    folder between ``root`` and ``path`` is checked the same way, so ``OUT/a -> /x``
    cannot redirect a write to ``OUT/a/b/c``. ``root`` itself may be a link: the user named it.
    """
    folder = Path(path)
    chain = [folder]
    if root is not None:
        rel = folder.relative_to(root)
        chain = [Path(root).joinpath(*rel.parts[:i]) for i in range(1, len(rel.parts) + 1)]
    for step in chain:
        refuse_link(step, what)
        step.mkdir(parents=True, exist_ok=True)
        info = os.lstat(step)
        if stat.S_ISLNK(info.st_mode):  # planted between the check and mkdir
            refuse_link(step, what)
        if not stat.S_ISDIR(info.st_mode):
            raise InputError(step, f"is {kind_of(info.st_mode)}, not a folder")
    return folder


def open_no_follow(path: str | os.PathLike[str], flags: int, mode: int = 0o644, what: str = "file") -> int:
    """``os.open`` that never follows a final symbolic link and refuses anything but a regular file.

    ``O_NONBLOCK`` keeps a FIFO planted under our name from blocking the open; the
    returned descriptor is switched back to blocking.
    """
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    nonblock = getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | nofollow | nonblock | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as err:
        if err.errno == errno.ELOOP or os.path.islink(path):
            refuse_link(path, what)
        if err.errno == errno.EISDIR:
            raise InputError(path, f"is a folder where affectseq keeps its own {what}; remove it") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise InputError(path, f"is {kind_of(info.st_mode)} where affectseq keeps its own {what}; remove it")
    if nonblock:
        os.set_blocking(fd, True)
    return fd
