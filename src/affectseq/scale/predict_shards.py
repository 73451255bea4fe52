"""Prediction over many videos in parallel: the shard runner shared by the local and Ray engines.

The driver plans the batch exactly as ``affectseq.predict.batch.run_batch`` does,
while holding the output folder's lock: the same folder per video
(``claim_folder``), the same skip rule (a full fingerprint match), the same notes.
Each shard then loads the model once per process and predicts its videos with
``affectseq.predict.batch.predict_planned``, which publishes each folder atomically
and turns any exception of one video into that video's failure.

A worker process that dies (killed, out of memory, a crash in native code) loses
its shard: the videos of that shard already published count as done, the others
are tried again, and a video whose task dies when run alone is that video's
failure. The rest of the batch goes on.

:func:`predict_parallel` is the local engine with ``--workers N > 1``: N spawned
processes, each with ``cores / N`` torch threads.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from affectseq.predict.batch import (
    BatchReport,
    OutcomeRecorder,
    OutputOptions,
    VideoOutcome,
    VideoPlan,
    collect_videos,
    expected_fingerprint,
    failed_outcome,
    plan_batch,
    predict_planned,
    skipped_outcome,
)
from affectseq.predict.outputs import read_summary
from affectseq.predict.pipeline import PredictOptions
from affectseq.scale.shards import balanced_shards, default_shard_count

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


def plan_predictions(
    inputs: Sequence[str | os.PathLike[str]], out_root: str | os.PathLike[str], model_info: dict[str, Any],
    options: PredictOptions, output_options: OutputOptions, overwrite: bool = False,
) -> tuple[list[VideoPlan], list[VideoOutcome]]:
    """``(plans of videos to predict, outcomes known already: skipped or unplaceable videos)``.

    Call it while holding the output folder's lock (``batch.output_session``).
    """
    def fingerprint_of(video: Path) -> dict[str, Any]:
        return expected_fingerprint(video, model_info, options, output_options)

    todo: list[VideoPlan] = []
    known: list[VideoOutcome] = []
    for plan in plan_batch(collect_videos(inputs), Path(out_root), fingerprint_of, overwrite):
        if isinstance(plan, VideoOutcome):
            known.append(plan)
        elif plan.action == "skip":
            known.append(skipped_outcome(plan))
        else:
            todo.append(plan)
    return todo, known


def start_batch(
    inputs: Sequence[str | os.PathLike[str]], out_root: str | os.PathLike[str], model: ModelRequest,
    options: PredictOptions, output_options: OutputOptions, overwrite: bool,
    on_outcome: Callable[[VideoOutcome], None] | None,
) -> tuple[list[VideoPlan], OutcomeRecorder]:
    """Plan a batch (:func:`plan_predictions`) and record the outcomes already known (skips)."""
    todo, known = plan_predictions(inputs, out_root, model.load().info.to_dict(), options, output_options,
                                   overwrite)
    record = OutcomeRecorder(on_outcome)
    record(known)
    return todo, record


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
    return [predict_planned(plan, bundle, options, output_options) for plan in plans]


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
    import torch

    global _STARTED
    _STARTED = started
    torch.set_num_threads(threads)
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


def predict_parallel(
    inputs: Sequence[str | os.PathLike[str]],
    out_root: str | os.PathLike[str],
    model: ModelRequest,
    options: PredictOptions = PredictOptions(),
    output_options: OutputOptions = OutputOptions(),
    *,
    workers: int = 2,
    overwrite: bool = False,
    on_outcome: Callable[[VideoOutcome], None] | None = None,
) -> BatchReport:
    """The local engine over ``workers`` processes (video-level parallelism); same outputs as ``run_batch``."""
    from affectseq.predict.batch import check_output_root, output_session

    root = Path(out_root)
    check_output_root(root)
    no_bar = dataclasses.replace(options, progress=False)  # bars of N processes would interleave
    with output_session(root, "predict"):
        todo, record = start_batch(inputs, root, model, options, output_options, overwrite, on_outcome)
        _run_locally(todo, model, no_bar, output_options, workers, record)
    return record.report
