"""Video -> tracked faces -> aligned crops -> batched frame model -> temporal stage -> frames table.

Four threads overlap (PyAV, OpenCV, torch and ONNX Runtime release the GIL):
decoding; full face detections on the tracker's detection frames, run ahead of
tracking (:class:`affectseq.faces.schedule.FramePlanner`); tracking and
alignment on the calling thread; the frame model on batches of crops. Bounded
queues between them keep memory flat. The temporal stage runs per face track
once the video is read (offline mode may look ahead; causal mode never does). Every stage is pluggable: pass a
:class:`~affectseq.predict.faces.FaceSource` or a custom
:class:`~affectseq.predict.stages.ModelBundle`.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from affectseq.errors import ConfigError
from affectseq.predict.faces import DEFAULT_DETECT_EVERY, FaceSource, align_crops, make_face_source
from affectseq.predict.outputs import summarize, video_metadata
from affectseq.predict.smoothing import SMOOTHING_MODES
from affectseq.predict.stages import ModelBundle
from affectseq.predict.table import FaceObservations, build_frames_table


DEFAULT_BATCH_SIZE = 64
# Frames in flight between threads: 24 decoded + 8 planned = the 32 decoded frames buffered
# before detection had its own thread (a 640x360 frame is 0.7 MB, a 4K one 25 MB).
DECODE_AHEAD = 24
PLAN_AHEAD = 8


@dataclass(frozen=True)
class PredictOptions:
    """How faces are found and predictions assembled (model choice lives in :func:`load_model`)."""

    detector: str = "mtcnn"
    detect_every: int = DEFAULT_DETECT_EVERY
    main_face_only: bool = False
    mode: str = "offline"           # "offline" (centred / bidirectional) or "causal" (streaming)
    batch_size: int = DEFAULT_BATCH_SIZE
    stride: int = 1                 # process every k-th frame (1 = all)
    # Intra-op threads of each torch stage (faces on the main thread, the model in a worker):
    # the stages already run in parallel with decoding, and more OpenMP threads than cores
    # makes MTCNN ~10x slower on a shared machine. None leaves torch's setting alone.
    torch_threads: int | None = 1
    progress: bool | None = None    # None: a bar when stderr is a terminal

    def __post_init__(self) -> None:
        if self.mode not in SMOOTHING_MODES:
            raise ConfigError(f"--mode must be one of {', '.join(SMOOTHING_MODES)}, got {self.mode!r}")
        if self.batch_size < 1 or self.detect_every < 1 or self.stride < 1:
            raise ConfigError("--batch-size, --detect-every and stride must be >= 1")


@dataclass
class VideoPrediction:
    """The result for one video: the frames table plus what ``summary.json`` records."""

    table: pd.DataFrame
    summary: dict[str, Any]
    classes: tuple[str, ...]
    has_va: bool
    timings: dict[str, float] = field(default_factory=dict)


_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterable[Any], depth: int = DECODE_AHEAD, name: str = "affectseq-decode") -> Iterator[Any]:
    """Iterate ``items`` in a background thread, ``depth`` items ahead; errors re-raise here."""
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


@dataclass(frozen=True)
class _WorkFrame:
    """A decoded frame shrunk to the face stage's working size; ``scale`` maps it to the video's pixels."""

    frame_idx: int
    time_sec: float
    rgb: np.ndarray
    scale: float


def _working_frames(frames: Iterable[Any]) -> Iterator[_WorkFrame]:
    """Frames at :data:`affectseq.faces.working.WORK_MAX_SIDE` at most, shrunk in the decode thread.

    Then only bounded copies wait in the queues (an 8K frame would be 100 MB each):
    faces are found, tracked and aligned on the copy, boxes reported at full resolution.
    """
    from affectseq.faces.working import working_frame

    for frame in frames:
        rgb, scale = working_frame(frame.rgb)
        yield _WorkFrame(frame.frame_idx, frame.time_sec, rgb, scale)


def _planned(frames: Iterator[Any], planner: Any, torch_threads: int | None,
             clock: dict[str, float]) -> Iterator[tuple[Any, Any]]:
    """``(frame, FramePlan)`` pairs: the tracker's schedule and full detections, run in the calling thread.

    Meant to run in a :func:`prefetch` worker; ``clock["plan_cpu_sec"]`` gets its CPU time.
    """
    _set_torch_threads(torch_threads)  # same intra-op threads as tracking: identical detections
    cpu = time.thread_time()
    try:
        for frame in frames:
            yield frame, planner.plan(frame.rgb)
    finally:
        clock["plan_cpu_sec"] = time.thread_time() - cpu
        close = getattr(frames, "close", None)
        if close is not None:
            close()  # stops the decode thread now, not at garbage collection


class _Batcher:
    """Collects aligned crops and runs the frame stage on full batches in a worker thread.

    The worker overlaps model inference with face tracking on the main thread
    (torch releases the GIL); at most ``max_queued`` batches wait, bounding memory.
    Results are kept in submission order.
    """

    def __init__(self, bundle: ModelBundle, batch_size: int, torch_threads: int | None, max_queued: int = 2):
        from concurrent.futures import ThreadPoolExecutor

        self.stage = bundle.frame_stage
        self.batch_size = batch_size
        self.torch_threads = torch_threads
        self.pending: list[np.ndarray] = []
        self.n_pending = 0
        self.futures: list[Any] = []
        self.max_queued = max_queued
        self.seconds = 0.0
        self.cpu_seconds = 0.0  # CPU time of the model thread (independent of machine load)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="affectseq-model")

    def _run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)  # per thread: keep each stage from oversubscribing
        start, cpu = time.perf_counter(), time.thread_time()
        out = {k: np.asarray(v, dtype=np.float32) for k, v in self.stage(crops).items()}
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.thread_time() - cpu
        return out

    def add(self, crops: np.ndarray) -> None:
        if len(crops):
            self.pending.append(crops)
            self.n_pending += len(crops)
            if self.n_pending >= self.batch_size:
                self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        in_flight = [f for f in self.futures if not f.done()]
        if len(in_flight) >= self.max_queued:
            in_flight[0].result()  # back-pressure: wait for the oldest batch
        self.futures.append(self.executor.submit(self._run, np.concatenate(self.pending)))
        self.pending, self.n_pending = [], 0

    def result(self) -> dict[str, np.ndarray]:
        self.flush()
        try:
            parts = [f.result() for f in self.futures]
        finally:
            self.executor.shutdown(wait=True, cancel_futures=True)
        keys = parts[0].keys() if parts else ()
        return {k: np.concatenate([p[k] for p in parts]) for k in keys}

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def predict_video_table(
    path: str | Path,
    bundle: ModelBundle,
    options: PredictOptions = PredictOptions(),
    face_source: FaceSource | None = None,
    aligner: Callable[[np.ndarray, list[Any]], np.ndarray] = align_crops,
) -> VideoPrediction:
    """Run the whole pipeline on one video; raise ``InputError`` for a video that cannot be read.

    ``face_source`` (default: detector + tracker from ``options``) and ``aligner``
    (frame, detections -> uint8 crops) replace the face stage for custom setups.
    """
    from affectseq.io.video import VideoReader
    from affectseq.utils.progress import make_progress

    if options.mode == "causal" and not bundle.causal_ok:
        raise ConfigError(
            f"model {bundle.info.model_id} has a bidirectional temporal model: use --mode offline"
        )
    start = time.perf_counter()
    reader = VideoReader(path, stride=options.stride)  # probes: InputError for non-videos
    info = reader.info
    source = face_source or make_face_source(options.detector, options.detect_every, options.main_face_only)
    batcher = _Batcher(bundle, options.batch_size, options.torch_threads)
    threads_before = _set_torch_threads(options.torch_threads)
    setup_sec = time.perf_counter() - start  # probing, and building the detector (weights, first imports)
    frame_idx: list[int] = []
    time_sec: list[float] = []
    face_frame: list[int] = []
    face_ids: list[int] = []
    boxes: list[tuple[float, ...]] = []
    scores: list[float] = []
    face_seconds = face_cpu = wait_seconds = drain_seconds = 0.0
    clock: dict[str, float] = {}
    total = max(info.frame_count // options.stride, 1)
    make_planner = getattr(source, "planner", None)
    if make_planner is not None:
        stream: Iterator[tuple[Any, Any]] = prefetch(
            _planned(prefetch(_working_frames(reader)), make_planner(), options.torch_threads, clock), PLAN_AHEAD,
            "affectseq-detect")
    else:
        stream = ((frame, None) for frame in prefetch(_working_frames(reader)))
    try:
        with make_progress(disable=None if options.progress is None else not options.progress) as progress:
            task = progress.add_task(Path(path).name, total=total)
            # Thread CPU time is read once for the whole loop, not per frame: on a loaded VM
            # that syscall can take milliseconds, all the while holding the GIL every thread needs.
            loop_cpu = time.thread_time()
            ready = time.perf_counter()
            for frame, plan in stream:
                wait_seconds += time.perf_counter() - ready  # the decode/detect threads are behind
                frame_idx.append(frame.frame_idx)
                time_sec.append(frame.time_sec)
                t0 = time.perf_counter()
                if plan is None:
                    faces = source.update(frame.frame_idx, frame.rgb)
                else:
                    faces = source.update(frame.frame_idx, frame.rgb, plan)
                crops = aligner(frame.rgb, [det for _, det in faces])
                face_seconds += time.perf_counter() - t0
                for fid, det in faces:
                    face_frame.append(frame.frame_idx)
                    face_ids.append(fid)
                    boxes.append(tuple(float(v) / frame.scale for v in det.box))  # full-resolution pixels
                    scores.append(float(det.score))
                batcher.add(crops)
                progress.advance(task)
                ready = time.perf_counter()
            face_cpu = time.thread_time() - loop_cpu
        drain_start = time.perf_counter()
        frame_outputs = batcher.result()
        drain_seconds = time.perf_counter() - drain_start  # the model finishing after the last frame
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # an error mid-video must not leave the decode and detection threads running
        batcher.close()
        _set_torch_threads(threads_before)
    decode_done = time.perf_counter()

    classes = tuple(bundle.info.classes)
    obs = _temporal(bundle, options, frame_outputs, np.asarray(face_frame, np.int64),
                    np.asarray(face_ids, np.int64), np.asarray(boxes, np.float32).reshape(-1, 4),
                    np.asarray(scores, np.float32), frame_idx, time_sec)
    table = build_frames_table(np.asarray(frame_idx), np.asarray(time_sec), obs, classes, bundle.info.has_va)
    seconds = time.perf_counter() - start
    processing = {
        "seconds": round(seconds, 3),
        "fps": round(len(frame_idx) / seconds, 2) if seconds > 0 else None,
        "detector": options.detector,
        "detect_every": options.detect_every,
        "main_face_only": options.main_face_only,
        "mode": options.mode,
        "batch_size": options.batch_size,
        "stride": options.stride,
    }
    summary = summarize(table, list(classes), bundle.info.has_va, video=video_metadata(info, path),
                        model=bundle.info.to_dict(), processing=processing)
    # Where the time went (benchmarks/predict_speed.py prints them per frame). CPU times are per
    # thread: faces = the calling thread's frame loop (tracking, alignment, bookkeeping);
    # detect-ahead = schedule + full detections; model = the frame stage.
    timings = {"total_sec": seconds, "setup_sec": setup_sec, "faces_sec": face_seconds,
               "model_sec": batcher.seconds, "faces_cpu_sec": face_cpu, "model_cpu_sec": batcher.cpu_seconds,
               "detect_ahead_cpu_sec": clock.get("plan_cpu_sec", 0.0), "wait_frames_sec": wait_seconds,
               "model_drain_sec": drain_seconds, "temporal_sec": seconds - (decode_done - start)}
    return VideoPrediction(table=table, summary=summary, classes=classes, has_va=bundle.info.has_va,
                           timings=timings)


def _set_torch_threads(threads: int | None) -> int | None:
    """Set torch's intra-op threads for this thread; return the previous value (None: unchanged)."""
    if not threads:
        return None
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    return before


def _main_track(face_ids: np.ndarray, boxes: np.ndarray) -> int | None:
    """The track with the largest total face area over the video: long and large beats brief and small."""
    if len(face_ids) == 0:
        return None
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    ids, inverse = np.unique(face_ids, return_inverse=True)
    return int(ids[np.argmax(np.bincount(inverse, weights=area))])


def _temporal(
    bundle: ModelBundle,
    options: PredictOptions,
    outputs: dict[str, np.ndarray],
    face_frame: np.ndarray,
    face_ids: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    frame_idx: list[int],
    time_sec: list[float],
) -> FaceObservations:
    """Run the temporal stage over each face track and return the final face rows."""
    num_classes = len(bundle.info.classes)
    keep = np.ones(len(face_ids), bool)
    if options.main_face_only:
        main = _main_track(face_ids, boxes)
        keep = face_ids == main
    time_of = dict(zip(frame_idx, time_sec))
    expr = np.zeros((len(face_ids), num_classes), np.float32)
    va = np.full((len(face_ids), 2), np.nan, np.float32) if bundle.info.has_va else None
    for fid in np.unique(face_ids[keep]):
        rows = np.flatnonzero((face_ids == fid) & keep)
        rows = rows[np.argsort(face_frame[rows], kind="stable")]
        track_frames = face_frame[rows]
        track_times = np.array([time_of[f] for f in track_frames.tolist()])
        result = bundle.temporal_stage.run_track(
            {k: v[rows] for k, v in outputs.items()}, track_times, track_frames // options.stride, options.mode
        )
        if num_classes:
            expr[rows] = result["expr_prob"]
        if va is not None and "va" in result:
            va[rows] = result["va"]
    return FaceObservations(
        frame_idx=face_frame[keep], face_id=face_ids[keep], boxes=boxes[keep], det_score=scores[keep],
        expr_prob=expr[keep], va=None if va is None else va[keep],
    )
