"""Video -> per-frame emotions, as five stages with one job each.

1. **decode** and 2. **face stream**: :class:`affectseq.faces.stream.FaceCropStream` -- the
   face stage extraction uses too -- with ``ahead=True``: decoding and the tracker's full
   detections run in two threads ahead of tracking and alignment on the calling thread;
3. **frame model**: :class:`BatchedFrameModel` runs the bundle's frame stage on batches of
   crops in a worker thread, overlapping tracking;
4. **temporal stage**: :meth:`FaceRows.observations`, the bundle's temporal stage over each face track
   once the video is read (offline may look ahead; causal steps the same per-track state as
   live prediction, :class:`~affectseq.predict.stages.TemporalStage`);
5. **table**: :func:`affectseq.predict.table.build_frames_table` joins every processed
   frame with the face rows.

PyAV, OpenCV, torch and ONNX Runtime release the GIL, so the threads overlap; bounded
queues keep memory flat. ``--main-face-only`` has one rule, applied once, in the face
stream (:class:`affectseq.faces.tracking.MainFace`): the main face is the one with the
largest accumulated area, kept while it is on screen; when it leaves, the largest
remaining face takes over -- every person who was the main face keeps their rows.
Every stage is pluggable: a face source (``face_source``, ``aligner``) or a custom
:class:`~affectseq.predict.stages.ModelBundle`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from affectseq.errors import ConfigError, InputError
from affectseq.faces.settings import FACE_PARAMS, FaceSettings
from affectseq.faces.stream import FaceCropStream, FaceSource, FrameFaces, make_tracker
from affectseq.predict.outputs import summarize, video_metadata
from affectseq.predict.clip import ClipTemporal, clip_summary
from affectseq.predict.smoothing import SMOOTHING_MODES
from affectseq.predict.stages import ModelBundle, TemporalStage
from affectseq.predict.table import FaceObservations, build_frames_table
from affectseq.utils.numbers import NonFiniteOutput, nonfinite_summary
from affectseq.utils.params import Boolean, Interval, OneOf, Param
from affectseq.utils.threads import set_loaded_torch_threads

if TYPE_CHECKING:  # pandas (0.5-1 s) loads when a table is built, not for --help
    import pandas as pd

DEFAULT_BATCH_SIZE = 64


@dataclass(frozen=True)
class PredictOptions(FaceSettings):
    """How faces are found (:class:`~affectseq.faces.settings.FaceSettings`, the first three fields) and
    predictions assembled; the model choice lives in :func:`load_model`. Each setting is declared once in
    ``PARAMS``, which checks it and says whether it changes the outputs (the run fingerprint)."""

    PARAMS: ClassVar[dict[str, Param]] = {
        **FACE_PARAMS,
        "mode": Param("offline", OneOf(SMOOTHING_MODES),
                      "offline: centred/bidirectional over the whole video; causal: streaming, uses past frames "
                      "only (default %(default)s)"),
        "batch_size": Param(DEFAULT_BATCH_SIZE, Interval(int, 1, None), "faces per model batch",
                            fingerprint=False),
        "stride": Param(1, Interval(int, 1, None), "process every k-th frame (1 = all)"),
        "torch_threads": Param(1, Interval(int, 1, None), "intra-op threads of each torch stage",
                               fingerprint=False, nullable=True),
        "progress": Param(None, Boolean(), "a progress bar (None: when stderr is a terminal)",
                          fingerprint=False, nullable=True),
    }

    mode: str = "offline"           # "offline" (centred / bidirectional) or "causal" (streaming)
    batch_size: int = DEFAULT_BATCH_SIZE
    stride: int = 1                 # process every k-th frame (1 = all)
    # Intra-op threads of each torch stage (faces on the main thread, the model in a worker):
    # the stages already run in parallel with decoding, and more OpenMP threads than cores
    # makes MTCNN ~10x slower on a shared machine. None leaves torch's setting alone.
    torch_threads: int | None = 1
    progress: bool | None = None    # None: a bar when stderr is a terminal

    @property
    def faces(self) -> FaceSettings:
        """The face settings alone."""
        return FaceSettings(self.detector, self.detect_every, self.main_face_only)


@dataclass
class VideoPrediction:
    """The result for one video: the frames table plus what ``summary.json`` records."""

    table: pd.DataFrame
    summary: dict[str, Any]
    classes: tuple[str, ...]
    has_va: bool
    timings: dict[str, float] = field(default_factory=dict)


MIN_CLIP_BATCH = 8  # smaller batches cost more per face than they save in waiting


def clip_batch_size(batch_size: int, expected_frames: int) -> int:
    """The model batch for a video of ``expected_frames``: at most a quarter of it (not below 8).

    The model runs a batch once it is full, so a short clip with the full batch (e.g. 64 for
    72 frames) has almost all its model work left after its last frame, while the face stage
    waits. A quarter of the clip per batch lets the model work during the clip, and what
    remains at its end is one small batch. Long videos keep ``batch_size``; outputs are the same.
    """
    if expected_frames <= 0:
        return batch_size
    return max(min(batch_size, MIN_CLIP_BATCH), min(batch_size, -(-expected_frames // 4)))


class BatchedFrameModel:
    """Stage 3: collects aligned crops and runs the frame stage on full batches in a worker thread.

    The worker overlaps model inference with face tracking on the calling thread
    (torch releases the GIL); at most ``max_queued`` batches wait, bounding memory.
    :meth:`result` gives the outputs in submission order, one row per crop.
    """

    def __init__(self, stage: Callable[[np.ndarray], dict[str, np.ndarray]], batch_size: int,
                 torch_threads: int | None, max_queued: int = 2):
        self.stage = stage
        self.batch_size = batch_size
        self.torch_threads = torch_threads
        self.pending: list[np.ndarray] = []
        self.futures: list[Any] = []
        self.max_queued = max_queued
        self.seconds = 0.0
        self.cpu_seconds = 0.0  # CPU time of the model thread (independent of machine load)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="affectseq-model")

    def _run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        set_loaded_torch_threads(self.torch_threads)  # per thread: keep each stage from oversubscribing
        start, cpu = time.perf_counter(), time.thread_time()
        out = {k: np.asarray(v, dtype=np.float32) for k, v in self.stage(crops).items()}
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.thread_time() - cpu
        return out

    def add(self, crops: list[np.ndarray]) -> None:
        """Queue (H, W, 3) crops; a full batch goes to the worker."""
        self.pending.extend(crops)
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        in_flight = [f for f in self.futures if not f.done()]
        if len(in_flight) >= self.max_queued:
            in_flight[0].result()  # back-pressure: wait for the oldest batch
        self.futures.append(self.executor.submit(self._run, np.stack(self.pending)))
        self.pending = []

    def result(self) -> dict[str, np.ndarray]:
        self.flush()
        try:
            parts = [f.result() for f in self.futures]
        finally:
            self.close()
        keys = parts[0].keys() if parts else ()
        return {k: np.concatenate([p[k] for p in parts]) for k in keys}

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


class FaceRows:
    """What the face stream found: every processed frame ``(frame_idx, time_sec)``, and per face
    ``(frame_idx, face_id, box, det_score)`` in stream order (crops go to the model, not here)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, float]] = []
        self.faces: list[tuple[int, int, tuple[float, ...], float]] = []

    def add(self, frame: FrameFaces) -> None:
        self.frames.append((frame.frame_idx, frame.time_sec))
        self.faces.extend((f.frame_idx, f.face_id, f.box, f.score) for f in frame.faces)

    @property
    def frame_idx(self) -> np.ndarray:
        return np.array([f for f, _ in self.frames], np.int64)

    @property
    def time_sec(self) -> np.ndarray:
        return np.array([t for _, t in self.frames], np.float64)

    def observations(self, outputs: dict[str, np.ndarray], temporal: TemporalStage, mode: str,
                     stride: int, num_classes: int, has_va: bool) -> FaceObservations:
        """Stage 4: the temporal stage over each face track -> the final face rows."""
        face_frame = np.array([f[0] for f in self.faces], np.int64)
        face_ids = np.array([f[1] for f in self.faces], np.int64)
        time_of = dict(self.frames)
        expr = np.zeros((len(face_ids), num_classes), np.float32)
        va = np.full((len(face_ids), 2), np.nan, np.float32) if has_va else None
        for fid in np.unique(face_ids):
            rows = np.flatnonzero(face_ids == fid)  # in frame order: the stream yields frames in order
            track_frames = face_frame[rows]
            track_times = np.array([time_of[f] for f in track_frames.tolist()])
            result = temporal.run_track({k: v[rows] for k, v in outputs.items()}, track_times,
                                        track_frames // stride, mode)
            if num_classes:
                expr[rows] = result["expr_prob"]
            if va is not None and "va" in result:
                va[rows] = result["va"]
        return FaceObservations(frame_idx=face_frame, face_id=face_ids,
                                boxes=np.array([f[2] for f in self.faces], np.float32).reshape(-1, 4),
                                det_score=np.array([f[3] for f in self.faces], np.float32), expr_prob=expr, va=va)


def predict_video_table(
    path: str | Path,
    bundle: ModelBundle,
    options: PredictOptions = PredictOptions(),
    face_source: FaceSource | None = None,
    aligner: Callable[[np.ndarray, list[Any]], np.ndarray] | None = None,
    on_frame: Callable[[int, int], None] | None = None,
) -> VideoPrediction:
    """Run the whole pipeline on one video; raise ``InputError`` for a video that cannot be read.

    ``face_source`` (default: detector + tracker from ``options``) and ``aligner``
    (frame, detections -> uint8 crops) replace the face stage for custom setups.
    ``on_frame(frames_done, frames_expected)`` runs after each frame (expected: the header's count); an
    exception it raises stops the video (``serve``'s progress and cancel). It changes no output.
    """
    from affectseq.io.video import VideoReader

    if options.mode == "causal" and not bundle.causal_ok:
        raise ConfigError(f"model {bundle.info.model_id} has a bidirectional temporal model: use --mode offline")
    start = time.perf_counter()
    reader = VideoReader(path, stride=options.stride)  # probes: InputError for non-videos
    source = face_source or default_face_source(options, bundle)
    stream = FaceCropStream(path, source, main_face_only=options.main_face_only, stride=options.stride,
                            aligner=aligner, ahead=True, torch_threads=options.torch_threads)
    temporal = bundle.temporal_stage.at_fps(reader.info.fps / options.stride if reader.info.fps else None)
    batch = clip_batch_size(options.batch_size, reader.info.frame_count // options.stride)
    model = BatchedFrameModel(bundle.frame_stage, batch, options.torch_threads)
    setup_sec = time.perf_counter() - start  # probing, and building the detector (weights, first imports)
    rows, outputs, drain_sec = _read_faces(path, reader, stream, model, options, on_frame)
    faces_done = time.perf_counter()

    classes = tuple(bundle.info.classes)
    obs = _checked_observations(rows, outputs, temporal, bundle, options)
    table = build_frames_table(rows.frame_idx, rows.time_sec, obs, classes, bundle.info.has_va)
    seconds = time.perf_counter() - start
    processing = {
        "seconds": round(seconds, 3),
        "fps": round(len(rows.frames) / seconds, 2) if seconds > 0 else None,
        "detector": options.detector,
        "detect_every": options.detect_every,
        "main_face_only": options.main_face_only,
        "mode": options.mode,
        "batch_size": options.batch_size,
        "stride": options.stride,
        "temporal": temporal.describe(),
    }
    summary = summarize(table, list(classes), bundle.info.has_va, video=video_metadata(reader.info, path),
                        model=bundle.info.to_dict(), processing=processing)
    summary.update(clip_summary(table, classes) if isinstance(temporal, ClipTemporal) else {})  # clip bundles
    timings = _timings(stream.timings, model, seconds, setup_sec, drain_sec, seconds - (faces_done - start))
    return VideoPrediction(table=table, summary=summary, classes=classes, has_va=bundle.info.has_va,
                           timings=timings)


def _timings(stream_timings: dict[str, float], model: BatchedFrameModel, total_sec: float, setup_sec: float,
             drain_sec: float, temporal_sec: float) -> dict[str, float]:
    """Where the time went (benchmarks/predict_speed.py prints them per frame). CPU times are per thread:
    faces = the calling thread's frame loop (tracking, alignment, bookkeeping); detect-ahead = schedule +
    full detections; model = the frame stage."""
    t = stream_timings
    return {"total_sec": total_sec, "setup_sec": setup_sec, "faces_sec": t["faces_sec"],
            "model_sec": model.seconds, "faces_cpu_sec": t["loop_cpu_sec"], "model_cpu_sec": model.cpu_seconds,
            "detect_ahead_cpu_sec": t["detect_ahead_cpu_sec"], "wait_frames_sec": t["wait_frames_sec"],
            "model_drain_sec": drain_sec, "temporal_sec": temporal_sec}


def default_face_source(options: PredictOptions, bundle: ModelBundle) -> FaceSource:
    """The tracker of ``options``; its detector runs where the frame model does: torch for
    ``--backend torch``, else ``auto`` (ONNX Runtime on CPU)."""
    backend = "torch" if bundle.info.extra.get("backend") == "torch" else "auto"
    return make_tracker(options.detector, options.detect_every, options.main_face_only, backend)


def _checked_observations(rows: FaceRows, outputs: dict[str, np.ndarray], temporal: TemporalStage,
                          bundle: ModelBundle, options: PredictOptions) -> FaceObservations:
    """Stage 4 (:meth:`FaceRows.observations`), with NaN/inf from either model stage as one InputError."""
    check_finite_outputs(bundle, outputs, "frame model")
    try:
        return rows.observations(outputs, temporal, options.mode, options.stride, len(bundle.info.classes),
                                 bundle.info.has_va)
    except NonFiniteOutput as err:
        raise _broken_model(bundle, "temporal model", str(err)) from None


def check_finite_outputs(bundle: ModelBundle, outputs: dict[str, np.ndarray], stage: str) -> None:
    """InputError naming the model when its outputs hold NaN or inf (NaN weights): they must never pass for
    "no face", nor leave a blank result a rerun would skip as up to date."""
    bad = nonfinite_summary(outputs)
    if bad:
        raise _broken_model(bundle, stage, bad)


def _broken_model(bundle: ModelBundle, stage: str, bad: str) -> InputError:
    return InputError(bundle.info.source or bundle.info.model_id, f"the {stage} gave non-finite outputs ({bad}): "
                      "the model file is broken (NaN or inf weights?); nothing written")


def _read_faces(path: str | Path, reader: Any, stream: FaceCropStream, model: BatchedFrameModel,
                options: PredictOptions, on_frame: Callable[[int, int], None] | None = None,
                ) -> tuple[FaceRows, dict[str, np.ndarray], float]:
    """Stages 1-3 over the whole video: face rows, frame-model outputs (one row per face), drain seconds."""
    from affectseq.utils.progress import make_progress

    rows = FaceRows()
    threads_before = set_loaded_torch_threads(options.torch_threads)
    frames = stream.frames(reader)
    try:
        with make_progress(disable=None if options.progress is None else not options.progress) as progress:
            expected = max(reader.info.frame_count // options.stride, 1)
            task = progress.add_task(Path(path).name, total=expected)
            for done, frame in enumerate(frames, start=1):
                rows.add(frame)
                model.add([face.crop for face in frame.faces])
                progress.advance(task)
                if on_frame is not None:
                    on_frame(done, expected)
        drain = time.perf_counter()
        outputs = model.result()
        return rows, outputs, time.perf_counter() - drain  # the model finishing after the last frame
    finally:
        frames.close()  # an error mid-video must not leave the decode and detection threads running
        model.close()
        set_loaded_torch_threads(threads_before)
