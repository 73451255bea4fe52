"""Run an iterator ahead in a background thread: the stages of a video pipeline overlap.

PyAV, OpenCV, torch and ONNX Runtime release the GIL, so decoding, face detection
and the frame model can run on different cores while the calling thread tracks
faces. A bounded queue keeps memory flat (at most ``depth`` items wait).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterable, Iterator

_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterable[Any], depth: int = 8, name: str = "affectseq-prefetch") -> Iterator[Any]:
    """Iterate ``items`` in a background thread, ``depth`` items ahead, in order; errors re-raise here.

    Closing the returned generator (or leaving its loop early) stops the thread and
    closes ``items``' iterator, so a failing consumer leaves no thread running.
    """
    buf: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        buf.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as err:  # handed to the consumer, which re-raises it
            buf.put(_Failure(err))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            buf.put(_END)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = buf.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # drain so a blocked producer can finish
            try:
                buf.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()
