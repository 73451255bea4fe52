"""Temporal smoothing of per-frame outputs over one face track (the default model's temporal stage).

The default model has no learned temporal model (no labelled video here), so its
temporal stage is a moving average of the per-frame class probabilities (and of
valence/arousal when a frame model has a VA head) over a window given in
seconds, computed along each face track:

* ``offline``: centred window ``[t - w/2, t + w/2]`` -- no lag, needs the whole track;
* ``causal``: trailing window ``(t - w, t]`` -- usable live, lags by about ``w/2``.

Frames where the track has no face are masked: they neither contribute to nor
receive a smoothed value, so a gap never drags probabilities towards zero.
Windows are in seconds (not frames) so the same setting means the same thing at
any frame rate; a window of 0 returns the inputs unchanged.

:class:`CausalSmoother` gives the ``causal`` result one frame at a time for live
use; it matches :func:`smooth_track` exactly.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

import numpy as np

SmoothingMode = Literal["offline", "causal"]
SMOOTHING_MODES: tuple[str, ...] = ("offline", "causal")

# Default window: about 12 frames at 24 fps. Long enough to remove the frame-to-frame
# flicker of a per-frame CNN, short enough to keep expression onsets (which take
# roughly 0.3-1 s) -- a lag of ~0.25 s in causal mode.
DEFAULT_SMOOTHING_SEC = 0.5


def _window_bounds(times: np.ndarray, window_sec: float, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Index range ``[lo, hi)`` of the window of each sample in sorted ``times``."""
    if mode == "offline":
        half = window_sec / 2.0
        lo = np.searchsorted(times, times - half - 1e-9, side="left")
        hi = np.searchsorted(times, times + half + 1e-9, side="right")
    elif mode == "causal":
        lo = np.searchsorted(times, times - window_sec + 1e-9, side="left")
        hi = np.arange(1, len(times) + 1)
    else:
        raise ValueError(f"smoothing mode must be one of {SMOOTHING_MODES}, got {mode!r}")
    return lo, hi


def smooth_track(
    values: np.ndarray,
    time_sec: np.ndarray,
    window_sec: float,
    mode: str = "offline",
    present: np.ndarray | None = None,
) -> np.ndarray:
    """Moving average of ``values`` (T, D) over a time window along one track.

    ``time_sec`` (T,) must be non-decreasing. ``present`` (T,) bool marks frames
    where the face is present (default: rows without NaN); masked rows come back
    as NaN and are excluded from every window. Probabilities stay normalised
    because averaging is convex.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        return smooth_track(values[:, None], time_sec, window_sec, mode, present)[:, 0]
    times = np.asarray(time_sec, dtype=np.float64)
    if len(times) != len(values):
        raise ValueError(f"values ({len(values)}) and time_sec ({len(times)}) differ in length")
    if present is None:
        present = ~np.isnan(values).any(axis=1)
    present = np.asarray(present, dtype=bool)
    out = np.full_like(values, np.nan)
    idx = np.flatnonzero(present)
    if len(idx) == 0:
        return out
    if window_sec <= 0:
        out[idx] = values[idx]
        return out
    t = times[idx]
    if np.any(np.diff(t) < 0):
        raise ValueError("time_sec must be non-decreasing along a track")
    v = values[idx]
    lo, hi = _window_bounds(t, window_sec, mode)
    # Prefix sums make every window an O(1) difference: O(T) for the whole track.
    csum = np.vstack([np.zeros((1, v.shape[1])), np.cumsum(v, axis=0)])
    out[idx] = (csum[hi] - csum[lo]) / (hi - lo)[:, None]
    return out


class CausalSmoother:
    """Streaming ``causal`` smoothing for live use: feed one frame at a time per face track.

    ``update(face_id, time_sec, values)`` returns the mean of ``values`` over the
    track's samples in ``(time_sec - window_sec, time_sec]``, identical to
    :func:`smooth_track` with ``mode="causal"``. Tracks not updated for longer
    than the window are forgotten by :meth:`prune`.
    """

    def __init__(self, window_sec: float = DEFAULT_SMOOTHING_SEC):
        self.window_sec = float(window_sec)
        self._tracks: dict[int, deque[tuple[float, np.ndarray]]] = {}

    def update(self, face_id: int, time_sec: float, values: np.ndarray) -> np.ndarray:
        """Add one frame of ``face_id`` and return its smoothed values."""
        values = np.asarray(values, dtype=np.float64)
        if self.window_sec <= 0:
            return values.copy()
        buf = self._tracks.setdefault(face_id, deque())
        buf.append((float(time_sec), values))
        while buf and buf[0][0] <= time_sec - self.window_sec + 1e-9:
            buf.popleft()
        return np.mean([v for _, v in buf], axis=0)

    def prune(self, time_sec: float) -> None:
        """Drop tracks whose newest sample left the window (keeps memory bounded on long streams)."""
        stale = [fid for fid, buf in self._tracks.items() if not buf or buf[-1][0] <= time_sec - self.window_sec]
        for fid in stale:
            del self._tracks[fid]
