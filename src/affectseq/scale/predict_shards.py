"""Prediction over many videos in parallel: the shard runner shared by the local and Ray engines.

Output folders are named once, by the driver, with ``affectseq.predict.batch.output_dirs``
over the whole input list (so names are the same whatever the engine or the number
of shards); each shard then loads the model once and predicts its videos with
``affectseq.predict.batch.predict_one``, which publishes each folder atomically.
A failing video is recorded, never fatal, as in the local ``run_batch``.

:func:`predict_parallel` is the local engine with ``--workers N > 1``: N spawned
processes, each with ``cores / N`` torch threads, one shard queue.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from affectseq.errors import AffectseqError
from affectseq.predict.batch import (
    BatchReport,
    OutputOptions,
    VideoOutcome,
    check_output_root,
    collect_videos,
    is_finished,
    output_dirs,
    predict_one,
)
from affectseq.predict.pipeline import PredictOptions
from affectseq.scale.shards import balanced_shards, default_shard_count

log = logging.getLogger(__name__)


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

    def load(self) -> Any:
        from affectseq.predict.model import load_model

        return load_model(self.name_or_path, backend=self.backend, device=self.device,
                          smoothing_sec=self.smoothing_sec)


def plan_predictions(
    inputs: Sequence[str | os.PathLike[str]], out_root: str | os.PathLike[str], overwrite: bool = False
) -> tuple[list[tuple[Path, Path]], list[VideoOutcome]]:
    """``(todo pairs (video, out_dir), outcomes of videos already finished)`` for a batch."""
    root = Path(out_root)
    check_output_root(root)
    videos = collect_videos(inputs)
    todo, skipped = [], []
    for video, out_dir in zip(videos, output_dirs(videos, root)):
        if is_finished(out_dir) and not overwrite:
            skipped.append(VideoOutcome(video, out_dir, "skipped", f"{out_dir} exists (use --overwrite to redo)"))
        else:
            todo.append((video, out_dir))
    return todo, skipped


class OutcomeRecorder:
    """A batch's report plus the caller's per-video callback: both engines record outcomes through it."""

    def __init__(self, on_outcome: Callable[[VideoOutcome], None] | None = None):
        self.report = BatchReport(outcomes=[])
        self.on_outcome = on_outcome

    def __call__(self, outcomes: Iterable[VideoOutcome]) -> None:
        for outcome in outcomes:
            self.report.outcomes.append(outcome)
            if self.on_outcome:
                self.on_outcome(outcome)


def start_batch(
    inputs: Sequence[str | os.PathLike[str]], out_root: str | os.PathLike[str], overwrite: bool,
    on_outcome: Callable[[VideoOutcome], None] | None,
) -> tuple[list[tuple[Path, Path]], OutcomeRecorder]:
    """Plan a batch (:func:`plan_predictions`) and record its already finished videos as skipped."""
    todo, skipped = plan_predictions(inputs, out_root, overwrite)
    record = OutcomeRecorder(on_outcome)
    record(skipped)
    return todo, record


def shard_pairs(pairs: Sequence[tuple[Path, Path]], n_shards: int) -> list[list[tuple[Path, Path]]]:
    """Shards of (video, out_dir) balanced by file size (a proxy for frames to decode)."""
    costs = [p[0].stat().st_size if p[0].is_file() else 1 for p in pairs]
    return balanced_shards(list(pairs), costs, n_shards)


def predict_pairs(
    pairs: Sequence[tuple[Path, Path]], model: ModelRequest, options: PredictOptions, output_options: OutputOptions
) -> list[VideoOutcome]:
    """Predict each (video, out_dir) with one model load; failures are recorded per video."""
    outcomes = []
    try:
        bundle = model.load()
    except AffectseqError as err:  # every video of the shard fails the same way
        return [VideoOutcome(v, d, "failed", str(err)) for v, d in pairs]
    for video, out_dir in pairs:
        try:
            pred = predict_one(video, out_dir, bundle, options, output_options)
            outcomes.append(VideoOutcome(video, out_dir, "done", summary=pred.summary))
        except AffectseqError as err:
            outcomes.append(VideoOutcome(video, out_dir, "failed", str(err)))
        except (OSError, RuntimeError, ValueError, MemoryError) as err:
            log.debug("failure on %s", video, exc_info=True)
            detail = str(err).splitlines()[0] if str(err) else ""
            outcomes.append(VideoOutcome(video, out_dir, "failed", f"{video}: {type(err).__name__}: {detail}"))
    return outcomes


def _init_process(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


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
    from concurrent.futures import ProcessPoolExecutor, as_completed
    import multiprocessing as mp

    todo, record = start_batch(inputs, out_root, overwrite, on_outcome)
    shards = shard_pairs(todo, default_shard_count(len(todo), workers))
    threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
    no_bar = dataclasses.replace(options, progress=False)  # bars of N processes would interleave
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_process, initargs=(threads,)) as pool:
        futures = [pool.submit(predict_pairs, shard, model, no_bar, output_options) for shard in shards]
        for future in as_completed(futures):
            record(future.result())
    return record.report
