"""The real job runner of ``affectseq serve``: ``affectseq.predict`` on one uploaded video.

It calls the same public functions as ``affectseq predict`` (``predict_one``
with its atomic per-video folder), so a job's ``frames.csv`` is the file
``predict`` writes for the same video and options (and the same fingerprint in its
``summary.json``). Progress and cancellation ride on predict's per-frame callback.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from affectseq.errors import InputError
from affectseq.serve.jobs import JobCancelled, RunRequest

# Share of the progress bar for the frame loop; the rest is the temporal stage and writing files
# (the overlay re-encodes every frame, so it gets a visible share).
FRAMES_SHARE = {True: 0.8, False: 0.95}
MAX_CACHED_MODELS = 4


class _FrameProgress:
    """predict's ``on_frame`` callback: job progress, and a deleted job stopped between frames."""

    def __init__(self, request: RunRequest, share: float):
        self._request = request
        self._share = share

    def __call__(self, done: int, expected: int) -> None:
        if self._request.cancelled.is_set():
            raise JobCancelled(self._request.job_id)
        if done % 8 == 1 or done >= expected:  # not a lock and a dict update per frame
            # The frame count is the header's (approximate); past it, what remains is writing files.
            stage = "analysing frames" if done < expected else "writing timeline and overlay"
            self._request.progress(self._share * min(done / expected, 1.0), stage)


class PredictRunner:
    """Runs jobs with one model (loaded once per smoothing window and flip setting, then cached)."""

    def __init__(self, model: str = "default", backend: str = "auto", device: str = "auto"):
        self.model = model
        self.backend = backend
        self.device = device
        self._bundles: OrderedDict[tuple[float | None, bool], Any] = OrderedDict()
        self._lock = threading.Lock()

    def bundle(self, smoothing_sec: float | None = None, tta_flip: bool = False) -> Any:
        """The loaded model for a smoothing window (``None``: the model's own) and flip setting; errors surface here."""
        from affectseq.predict.model import load_model

        key = (smoothing_sec, bool(tta_flip))
        with self._lock:  # two workers must not both load the same model
            if key not in self._bundles:
                self._bundles[key] = load_model(self.model, backend=self.backend, device=self.device,
                                                smoothing_sec=smoothing_sec, tta_flip=bool(tta_flip))
                while len(self._bundles) > MAX_CACHED_MODELS:
                    self._bundles.popitem(last=False)
            self._bundles.move_to_end(key)
            return self._bundles[key]

    def __call__(self, request: RunRequest) -> dict[str, Any]:
        """Predict ``request.video`` into ``request.out_dir``; InputErrors name the client's file, not ours."""
        from affectseq.faces.settings import FACE_PARAMS
        from affectseq.predict.batch import predict_one
        from affectseq.predict.writers import OutputOptions
        from affectseq.predict.pipeline import PredictOptions

        opts = request.options
        faces = {name: opts[name] for name in FACE_PARAMS if name in opts}  # the form's face settings
        options = PredictOptions(**faces, progress=False)
        overlay = bool(opts.get("overlay", True))
        output = OutputOptions(table_format="csv", timeline=True, overlay=overlay)  # other writers: their defaults
        share = FRAMES_SHARE[overlay]
        request.progress(0.0, "loading model")
        bundle = self.bundle(opts.get("smoothing_sec"), bool(opts.get("tta_flip", False)))
        try:
            request.progress(0.0, "analysing frames")
            prediction = predict_one(request.video, request.out_dir, bundle, options, output,
                                     on_frame=_FrameProgress(request, share))
        except InputError as err:
            raise InputError(request.name, err.problem, err.line) from None
        # The API shows the client's file name and no server paths; summary.json on disk keeps
        # predict's own record (its fingerprint names the upload's path).
        summary = {k: v for k, v in prediction.summary.items() if k != "fingerprint"}
        summary["video"] = {**summary.get("video", {}), "path": request.name}
        return summary


def client_error(err: InputError, name: str) -> str:
    """An InputError's one-line message with the server's path replaced by the client's file name."""
    return str(InputError(name, err.problem, err.line))


def media_type(video: dict[str, Any], path: Path) -> str:
    """The MIME type to serve an upload with, from its probed container format."""
    fmt = str(video.get("container_format") or "")
    if "mp4" in fmt or "mov" in fmt:
        return "video/mp4"
    if "webm" in fmt or "matroska" in fmt:
        return "video/webm"
    if "ogg" in fmt:
        return "video/ogg"
    return "application/octet-stream"
