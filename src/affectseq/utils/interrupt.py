"""SIGTERM handled like Ctrl-C: long jobs unwind through their cleanup instead of dying mid-write."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` in the main thread.

    A no-op outside the main thread (Python only delivers signals there) and when
    the application already installed its own SIGTERM handler (a web server, Ray):
    theirs is kept. The previous handler is restored afterwards.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is _raise_interrupt:  # unless someone replaced it meanwhile
            signal.signal(signal.SIGTERM, previous)
