"""``affectseq serve``: a local web app and HTTP API -- upload a video, watch it beside its emotion timeline.

:mod:`.app` (FastAPI routes and the page), :mod:`.jobs` (persisted jobs and the
worker queue), :mod:`.runner` (``affectseq.predict`` on one upload),
:mod:`.upload` (streaming multipart with a size limit), :mod:`.options`,
:mod:`.series` (chart data), :mod:`.live` (the ``/live`` camera page's WebSocket)
and ``static/`` (the pages: plain HTML, CSS and canvas JavaScript, nothing loaded
from the internet). Needs the ``serve`` extra
(``pip install "affectseq[serve]"``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str) -> Any:
    # FastAPI is an optional extra: importing affectseq.serve must not require it.
    if name in __all__:
        from affectseq.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'affectseq.serve' has no attribute {name!r}")
