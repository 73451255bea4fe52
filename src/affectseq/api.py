"""The Python API: ``predict_video`` mirrors ``affectseq predict`` for one video (a DataFrame); ``live`` mirrors
``affectseq live`` (rows as they happen)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from affectseq.faces.detector import DEFAULT_DETECTOR

if TYPE_CHECKING:  # live() returns dicts: importing pandas would only slow its start
    import pandas as pd


def predict_video(
    path: str | os.PathLike[str],
    model: str | os.PathLike[str] | Any = "default",
    *,
    detect_every: int | None = None,
    main_face_only: bool = False,
    smoothing_sec: float | None = None,
    tta_flip: bool = False,
    mode: str = "offline",
    backend: str = "auto",
    device: str | None = "auto",
    batch_size: int | None = None,
    detector: str = DEFAULT_DETECTOR,
    face_source: Any = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Per-frame expression predictions for the video at ``path``.

    Returns the ``frames.csv`` table: one row per processed frame and face
    (``frame_idx``, ``time_sec``, ``face_id``, ``x1..y2``, ``det_score``,
    ``prob_<class>``..., ``label`` and ``valence``/``arousal`` when the model has
    a VA head); a frame without a face appears once with empty predictions. The
    ``summary.json`` content is in ``df.attrs["summary"]``.

    ``model`` is ``"default"`` (shipped), a checkpoint path (frame model or
    sequence bundle) or an already loaded :class:`affectseq.predict.ModelBundle`
    (load once with :func:`affectseq.predict.load_model` to predict many videos).
    ``mode="causal"`` uses past frames only (streaming); ``"offline"`` may look
    ahead. ``tta_flip=True`` averages each face's probabilities with its mirror image's
    (frame models; slower, a little more accurate: docs/model_card.md). Raises
    :class:`affectseq.errors.InputError` for an unreadable video.
    """
    from affectseq.faces.settings import DEFAULT_DETECT_EVERY
    from affectseq.predict.model import load_model
    from affectseq.predict.pipeline import DEFAULT_BATCH_SIZE, PredictOptions, predict_video_table
    from affectseq.predict.stages import ModelBundle

    bundle = model if isinstance(model, ModelBundle) else load_model(
        model, backend=backend, device=device, smoothing_sec=smoothing_sec, tta_flip=tta_flip
    )
    options = PredictOptions(
        detector=detector,
        detect_every=DEFAULT_DETECT_EVERY if detect_every is None else detect_every,
        main_face_only=main_face_only,
        mode=mode,
        batch_size=DEFAULT_BATCH_SIZE if batch_size is None else batch_size,
        progress=progress,
    )
    prediction = predict_video_table(path, bundle, options, face_source=face_source)
    table = prediction.table
    table.attrs["summary"] = prediction.summary
    return table


def live(
    source: str | int | os.PathLike[str],
    model: str | os.PathLike[str] | Any = "default",
    *,
    realtime: bool = False,
    detect_every: int | None = None,
    main_face_only: bool = False,
    max_seconds: float | None = None,
    smoothing_sec: float | None = None,
    detector: str = DEFAULT_DETECTOR,
    backend: str = "auto",
    device: str | None = "auto",
    buffer_frames: int | None = None,
    retries: int | None = None,
    on_event: Any = None,
) -> Any:
    """Rows of emotions from a camera, a stream or a file as they happen (what ``affectseq live`` prints).

    ``source``: a camera index (``0``), a stream URL PyAV opens (``rtsp://``, ``http(s)://``,
    ``udp://``, ``srt://``) or a video file (``realtime=True``: paced at its frame rate, as a
    camera). Returns an iterator of dicts, one per face per processed frame: ``frame_idx``,
    ``time_sec`` (stream time), ``wall_time``, ``face_id``, ``box`` ``[x1, y1, x2, y2]``,
    ``det_score``, ``label``, ``prob_<class>``..., ``valence``/``arousal`` for VA models; a frame
    without a face gives one row with null face fields. Predictions are causal (past frames
    only: the same as ``predict_video(..., mode="causal")``). When the loop body is slower
    than the source, frames are dropped and counted, never queued. The iterator's ``.stats``
    has the counts and latencies; ``.close()`` (or leaving a ``with`` block) stops the
    capture. ``model`` as in :func:`predict_video` (bidirectional sequence models cannot
    run live). Raises :class:`affectseq.errors.InputError` when the source cannot be opened.

    >>> for row in affectseq.live(0, max_seconds=10):      # doctest: +SKIP
    ...     print(row["frame_idx"], row["label"])
    """
    from affectseq.predict.live_run import LiveOptions, LiveRun
    from affectseq.predict.model import load_model
    from affectseq.predict.stages import ModelBundle

    given = {"detect_every": detect_every, "buffer_frames": buffer_frames, "retries": retries}
    options = LiveOptions(realtime=realtime, detector=detector, main_face_only=main_face_only,
                          max_seconds=max_seconds, **{k: v for k, v in given.items() if v is not None})
    bundle = model if isinstance(model, ModelBundle) else load_model(
        model, backend=backend, device=device, smoothing_sec=smoothing_sec
    )
    return LiveRun(str(source), bundle, options, on_event=on_event)
