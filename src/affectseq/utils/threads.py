"""Torch's intra-op thread count, set for a block and restored after it.

``torch.set_num_threads`` changes state the caller owns (a notebook, a web server, a
test run): library code that wants a thread count for its own work (a config's
``threads``) uses :func:`torch_threads`, so the caller's setting is back when it returns.
"""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``; restore the previous count afterwards.

    ``n`` of ``None`` or 0 leaves the count alone (and does not import torch), so
    ``with torch_threads(config.threads):`` reads naturally for an optional setting.
    """
    if not n:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def set_loaded_torch_threads(n: int | None) -> int | None:
    """``torch.set_num_threads(n)`` for the calling thread if torch is already imported; the previous count.

    Returns None (and changes nothing) for ``n`` None/0, or when no torch stage has loaded torch:
    a process running on ONNX Runtime alone must not import torch just to set its threads.
    """
    import sys

    torch = sys.modules.get("torch")
    if not n or torch is None:
        return None
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    return previous
