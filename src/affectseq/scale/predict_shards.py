"""Prediction over many videos in parallel: the shard runner shared by the ``workers`` and ``ray`` engines.

The one predict loop (:func:`affectseq.predict.engines.predict_batch`) plans the batch while
holding the output folder's lock: the same folder per video (``claim_folder``), the same skip
rule (a full fingerprint match), the same notes, whatever the engine. Each shard then loads
the model once per process and predicts its videos with ``affectseq.predict.batch.predict_plans``,
which publishes each folder atomically and turns any exception of one video into that video's failure.

A worker process that dies (killed, out of memory, a crash in native code) loses
its shard: the videos of that shard already published count as done, the others
are tried again, and a video whose task dies when run alone is that video's
failure. The rest of the batch goes on.

:class:`WorkersEngine` is the engine of ``--workers N > 1``: N spawned processes, each with
``cores / N`` intra-op threads for torch stages (:func:`predict_parallel` runs the loop with it).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from affectseq.predict.batch import BatchReport, OutcomeRecorder, VideoOutcome, VideoPlan, failed_outcome, predict_plans
from affectseq.predict.engines import known_outcomes, predict_batch
from affectseq.predict.outputs import read_summary
from affectseq.predict.pipeline import PredictOptions
from affectseq.predict.writers import OutputOptions
from affectseq.scale.shards import balanced_shards, default_shard_count
from affectseq.utils.threads import set_loaded_torch_threads

log = logging.getLogger(__name__)
_LOADED: dict[Any, Any] = {}  # the model of this process, by request: loaded once per worker, not per shard


@dataclass(frozen=True)
class ModelRequest:
    """How each worker loads the model (arguments of ``affectseq.predict.model.load_model``).

    A name or a path, not the loaded bundle: bundles may hold ONNX sessions or GPU
    tensors that do not travel between processes. On a cluster the path must be
    readable on every node (shared filesystem) or be a shipped model name.
    """

    name_or_path: str = "default"
    backend: str = "auto"  # as load_model: ONNX Runtime on CPU when installed, else torch
    device: str = "auto"
    smoothing_sec: float | None = None
    tta_flip: bool = False  # average each face with its mirror image (affectseq.predict.tta)

    def load(self) -> Any:
        """The loaded bundle; loaded once per process (the driver needs its info, each worker runs it)."""
        from affectseq.predict.model import load_model

        if self not in _LOADED:
            _LOADED.clear()  # keep one model per process
            _LOADED[self] = load_model(self.name_or_path, backend=self.backend, device=self.device,
                                       smoothing_sec=self.smoothing_sec, tta_flip=self.tta_flip)
        return _LOADED[self]


def shard_plans(plans: Sequence[VideoPlan], n_shards: int) -> list[list[VideoPlan]]:
    """Shards of plans balanced by file size (a proxy for frames to decode)."""
    costs = [p.video.stat().st_size if p.video.is_file() else 1 for p in plans]
    return balanced_shards(list(plans), costs, n_shards)


def predict_pairs(
    plans: Sequence[VideoPlan], model: ModelRequest, options: PredictOptions, output_options: OutputOptions
) -> list[VideoOutcome]:
    """Predict each planned video with one model load; any failure is recorded per video, never raised."""
    try:
        bundle = model.load()
    except Exception as err:  # noqa: BLE001 -- every video of the shard fails the same way
        return [failed_outcome(p.video, p.out_dir, err) for p in plans]
    outcomes: list[VideoOutcome] = []
    predict_plans(plans, bundle, options, output_options, outcomes.extend)  # writes overlap the next video
    return outcomes


def published_outcome(plan: VideoPlan) -> VideoOutcome | None:
    """A ``done`` outcome when ``plan``'s folder already holds its result (a lost shard got that far)."""
    summary = read_summary(plan.out_dir)
    if summary and summary.get("fingerprint") == plan.fingerprint:
        return VideoOutcome(plan.video, plan.out_dir, "done", summary=summary, note=plan.note)
    return None


def split_lost(lost: Sequence[tuple[VideoPlan, BaseException]]
               ) -> tuple[list[VideoOutcome], list[tuple[VideoPlan, BaseException]]]:
    """Plans of lost shards: ``(done outcomes of those already published, the unfinished rest)``."""
    done, unfinished = [], []
    for plan, err in lost:
        outcome = published_outcome(plan)
        if outcome is not None:
            done.append(outcome)
        else:
            unfinished.append((plan, err))
    return done, unfinished


# -- the local multi-process engine --------------------------------------------------------------------------
_STARTED: Any = None  # in a pool worker: a SimpleQueue told (synchronously) which video starts


def _init_process(threads: int, started: Any) -> None:
    global _STARTED
    _STARTED = started
    # Not `import torch` here: the default model and detector run on ONNX Runtime. A torch stage
    # imports torch later, which then reads its thread count from OMP_NUM_THREADS.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    set_loaded_torch_threads(threads)
    # The driver stops workers with SIGTERM on Ctrl-C: unwind like Ctrl-C, removing partial folders.
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def _predict_reporting(plans: Sequence[VideoPlan], model: ModelRequest, options: PredictOptions,
                       output_options: OutputOptions) -> list[VideoOutcome]:
    """:func:`predict_pairs` in a pool worker, telling the driver which video starts (crash attribution)."""
    outcomes = []
    for plan in plans:
        _STARTED.put(str(plan.out_dir))  # SimpleQueue: written before the video runs, even if it then dies
        outcomes.extend(predict_pairs([plan], model, options, output_options))
    return outcomes


def _stop_workers(pool: Any) -> None:
    """Cancel queued shards and terminate running workers (ProcessPoolExecutor has no public way)."""
    pool.shutdown(wait=False, cancel_futures=True)
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _pool_round(shards: Sequence[list[VideoPlan]], model: ModelRequest, options: PredictOptions,
                output_options: OutputOptions, workers: int, record: OutcomeRecorder
                ) -> tuple[list[tuple[VideoPlan, BaseException]], set[str]]:
    """Run ``shards`` on ``workers`` processes, recording outcomes.

    Returns the plans of shards that did not come back (a worker died: the whole
    pool breaks) with the error, and the folders of the videos that had started.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    started_queue = ctx.SimpleQueue()
    threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
    lost: list[tuple[VideoPlan, BaseException]] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_process,
                             initargs=(threads, started_queue)) as pool:
        try:
            futures = {pool.submit(_predict_reporting, shard, model, options, output_options): shard
                       for shard in shards}
            for future in as_completed(futures):
                try:
                    outcomes = future.result()
                except Exception as err:  # noqa: BLE001 -- BrokenProcessPool: a worker died
                    lost.extend((plan, err) for plan in futures[future])
                    continue
                record(outcomes)
        except BaseException:
            _stop_workers(pool)
            raise
    started = set()
    while not started_queue.empty():
        started.add(started_queue.get())
    return lost, started


def _run_locally(todo: list[VideoPlan], model: ModelRequest, options: PredictOptions,
                 output_options: OutputOptions, workers: int, record: OutcomeRecorder) -> None:
    """Rounds of pools until every plan has an outcome; a video that kills its worker alone is a failure.

    When a worker dies, the pool breaks and every unfinished shard comes back: the
    videos that had started are retried each in a pool of its own (the culprit
    fails there, the innocent succeed); those that never started go to a new round.
    """
    pending = todo
    while pending:
        shards = shard_plans(pending, default_shard_count(len(pending), workers))
        lost, started = _pool_round(shards, model, options, output_options, workers, record)
        done, unfinished = split_lost(lost)
        record(done)
        suspects = [(p, e) for p, e in unfinished if str(p.out_dir) in started]
        pending = [p for p, _ in unfinished if str(p.out_dir) not in started]
        if unfinished and not suspects:  # the pool died outside any video: rounds would not progress
            record(failed_outcome(p.video, p.out_dir, e) for p, e in unfinished)
            return
        for plan, _ in suspects:
            log.warning("%s: a worker died while on it; trying it again on its own", plan.video)
            again, _ = _pool_round([[plan]], model, options, output_options, 1, record)
            done, still = split_lost(again)
            record(done)
            record(failed_outcome(p.video, p.out_dir, e) for p, e in still)


@dataclass
class WorkersEngine:
    """The ``workers`` engine of :func:`affectseq.predict.engines.predict_batch`: ``workers`` spawned processes,
    each loading the model once (``model``: a :class:`ModelRequest`) and running shards of videos."""

    model: ModelRequest
    workers: int = 2
    face_source_factory: Any = None  # custom face stages do not travel to other processes
    aligner: Any = None

    @classmethod
    def from_request(cls, model: ModelRequest, workers: int = 2, **_: Any) -> "WorkersEngine":
        return cls(model, workers)

    def bundle(self) -> Any:
        return self.model.load()

    def run(self, plans: Sequence[VideoPlan | VideoOutcome], options: PredictOptions,
            output_options: OutputOptions, record: OutcomeRecorder) -> None:
        todo = known_outcomes(plans, record)
        no_bar = dataclasses.replace(options, progress=False)  # bars of N processes would interleave
        _run_locally(todo, self.model, no_bar, output_options, self.workers, record)


def predict_parallel(
    inputs: Sequence[str | os.PathLike[str]],
    out_root: str | os.PathLike[str],
    model: ModelRequest,
    options: PredictOptions = PredictOptions(),
    output_options: OutputOptions | None = None,
    *,
    workers: int = 2,
    overwrite: bool = False,
    on_outcome: Callable[[VideoOutcome], None] | None = None,
) -> BatchReport:
    """The one predict loop (:func:`~affectseq.predict.engines.predict_batch`) on ``workers`` processes
    (video-level parallelism); same outputs as ``run_batch``."""
    return predict_batch(inputs, out_root, WorkersEngine(model, workers), options, output_options,
                         overwrite=overwrite, on_outcome=on_outcome)
