"""One writer per output folder: a lock file naming its holder (pid, host), freed even by ``kill -9``.

``with hold_lock(folder / LOCK_FILE, purpose="predict"):`` makes a second run on
the same folder fail at once with :class:`LockHeld` (``wait_sec=0``) or wait for
the first. Exclusion comes from an OS file lock (``flock``) on the lock file: the
kernel drops it when the holder dies, however it dies, so a lock left by a killed
run is taken over by the next one (which logs whose lock it found). The file's
JSON content (pid, host, start time, purpose) is only for messages. The file is
removed on release (only if it is still the file we locked); a process that locked a
file removed meanwhile tries again, so two runs never both hold it. It is opened
with ``O_NOFOLLOW``: a symbolic link planted under its name is refused in one line,
never written through (``affectseq.utils.fsguard.open_no_follow``).

Where ``fcntl`` is missing (Windows), an exclusive-create file is used instead and
a lock whose pid is dead on this host counts as stale (a narrow race remains
there when two runs take over the same stale lock at the same instant).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from affectseq.errors import AffectseqError
from affectseq.utils.fsguard import open_no_follow

log = logging.getLogger(__name__)
LOCK_FILE = ".affectseq.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class LockHeld(AffectseqError):
    """Another live process holds the lock; the message names the folder and the holder."""

    def __init__(self, path: Path, holder: dict[str, Any] | None):
        self.path = path
        self.holder = holder or {}
        who = describe_holder(self.holder)
        super().__init__(f"{path.parent}: in use by another affectseq run ({who}); wait for it to finish "
                         f"or choose another output folder")


def describe_holder(holder: dict[str, Any]) -> str:
    """``"predict, pid 123 on host h, since 2024-01-01T10:00:00"`` from a lock file's content."""
    if not holder:
        return "holder unknown"
    parts = [str(holder["purpose"])] if holder.get("purpose") else []
    parts.append(f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}")
    if holder.get("since"):
        parts.append(f"since {holder['since']}")
    return ", ".join(parts)


def read_holder(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON content of a lock file, or ``None`` when absent, unreadable (e.g. being written) or not ours
    (a link or a special file: never followed or opened in blocking mode)."""
    try:
        fd = open_no_follow(path, os.O_RDONLY, what="lock file")
        try:
            data = json.loads(os.read(fd, 65536).decode("utf-8"))
        finally:
            os.close(fd)
    except (OSError, ValueError, AffectseqError):
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (permission errors count as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _holder_record(purpose: str) -> bytes:
    record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "purpose": purpose, "command": " ".join(sys.argv)[:500]}
    return (json.dumps(record) + "\n").encode("utf-8")


def _try_flock(path: Path, purpose: str) -> int | None:
    """Lock ``path`` without blocking; the open descriptor on success, ``None`` when another holds it."""
    # Never through a link planted under our name (it would truncate the link's target), never a FIFO.
    fd = open_no_follow(path, os.O_RDWR | os.O_CREAT, 0o644, what="lock file")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    try:
        same_file = os.fstat(fd).st_ino == os.lstat(path).st_ino
    except FileNotFoundError:
        same_file = False
    if not same_file:  # the previous holder removed the file between our open and flock: start over
        os.close(fd)
        return _try_flock(path, purpose)
    _note_takeover(path, os.read(fd, 4096))
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, _holder_record(purpose))
    return fd


def _note_takeover(path: Path, previous: bytes) -> None:
    """Log whose lock a killed run left behind (the file had content but nobody held it)."""
    if not previous.strip():
        return
    try:
        holder = json.loads(previous.decode("utf-8", "replace"))
    except ValueError:
        holder = {}
    log.warning("%s: taking over the lock of a run that ended without releasing it (%s)", path,
                describe_holder(holder if isinstance(holder, dict) else {}))


def _try_exclusive_create(path: Path, purpose: str) -> int | None:
    """Fallback without ``fcntl``: create the file exclusively; a dead holder on this host is stale."""
    try:
        fd = open_no_follow(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644, what="lock file")
    except FileExistsError:
        holder = read_holder(path)
        if holder and holder.get("host") == socket.gethostname() and not pid_alive(int(holder.get("pid", 0))):
            log.warning("%s: taking over a stale lock (%s no longer runs)", path, describe_holder(holder))
            path.unlink(missing_ok=True)
            return _try_exclusive_create(path, purpose)
        return None
    os.write(fd, _holder_record(purpose))
    return fd


@contextlib.contextmanager
def hold_lock(path: str | os.PathLike[str], purpose: str = "", wait_sec: float = 0.0,
              poll_sec: float = 0.5) -> Iterator[Path]:
    """Hold the lock file ``path`` for the block (created, and removed afterwards).

    Raises :class:`LockHeld` when another live process holds it after ``wait_sec``
    seconds (0: fail at once). ``purpose`` (e.g. ``"predict"``) goes into the
    holder record shown to whoever finds the folder busy.
    """
    lock = Path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    acquire = _try_flock if fcntl is not None else _try_exclusive_create
    deadline = time.monotonic() + max(wait_sec, 0.0)
    while (fd := acquire(lock, purpose)) is None:
        if time.monotonic() >= deadline:
            raise LockHeld(lock, read_holder(lock))
        time.sleep(poll_sec)
    try:
        yield lock
    finally:
        # Remove while still holding it: a waiter that opened the old file notices (inode check).
        # Only our own file: whatever replaced it meanwhile (a link, another file) is not ours to delete.
        with contextlib.suppress(OSError):
            if os.lstat(lock).st_ino == os.fstat(fd).st_ino:
                lock.unlink()
        os.close(fd)
