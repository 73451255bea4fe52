"""``--engine ray``: ``extract``, ``predict`` and ``data faces`` as Ray tasks, same outputs as the local engine.

The driver plans the work exactly as the local engine does (the same jobs, the same
skip-if-finished rule, the same output names), splits the unfinished videos into
balanced shards (:mod:`affectseq.scale.shards`) and runs one Ray task per shard --
or per video where a video is already a long task (``data faces``, ``extract`` on raw
videos: the face stage runs over the whole video). Each task runs the local engine's
own per-video code -- ``extract_videos`` / ``extract_raw_jobs`` with
``update_manifest=False`` into the shared store, ``predict_one`` per video, or
``crop_video`` -- so each video's outputs are committed atomically by the worker that
made them and a killed job resumes at video granularity; the driver rebuilds
``manifest.json`` once at the end. Ray tasks are retried by Ray when a worker dies.

Requirements on a cluster: ``affectseq[ray]`` installed on every node, and the
dataset, the model file and the output directory on a filesystem every node sees
at the same path (NFS, Lustre, a mounted bucket). Ray is imported lazily: it is
the optional extra ``pip install 'affectseq[ray]'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from affectseq.data.crop_export import CropJob
from affectseq.errors import ConfigError
from affectseq.features.extract import ExtractReport, MAX_LOGGED_ERRORS, extract_into_store, extract_videos
from affectseq.features.extract_jobs import plan_videos
from affectseq.predict.batch import (BatchReport, OutcomeRecorder, VideoOutcome, VideoPlan, describe_failure,
                                     failed_outcome)
from affectseq.predict.engines import known_outcomes, predict_batch
from affectseq.predict.pipeline import PredictOptions
from affectseq.predict.writers import OutputOptions
from affectseq.prepare.face_crops import CropRunner, crop_video
from affectseq.prepare.video_crops import CropOptions
from affectseq.prepare.video_features import extract_raw_jobs, plan_raw_videos, unfinished_jobs
from affectseq.scale.predict_shards import ModelRequest, predict_pairs, shard_plans, split_lost
from affectseq.scale.shards import balanced_shards, default_shard_count
from affectseq.utils.progress import make_progress

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """Where and how tasks run. ``address``: None starts a local instance; ``auto`` or ``ray://host:port``
    joins an existing cluster (then ``num_cpus``/``object_store_bytes`` are the cluster's own)."""

    address: str | None = None
    num_cpus: int | None = None  # local instance only; None: all cores
    object_store_bytes: int | None = None  # local instance only; None: Ray's default (30% of RAM)
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0  # e.g. 1 (a GPU per task) or 0.25 (four tasks share one)
    n_shards: int | None = None  # None: two per concurrent task slot
    log_to_driver: bool = False  # worker logs stay in Ray's log files; errors still reach the driver


def import_ray() -> Any:
    """The ``ray`` module, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'affectseq[ray]'") from None
    return ray


def init_ray(attempts: int = 2, **kwargs: Any) -> Any:
    """``ray.init(**kwargs)``, tried again when a local instance fails to start in time.

    Ray waits a fixed 30 s for a new local raylet to register; on an overloaded
    machine that can run out while the raylet is still importing, and a second
    attempt (with warm file caches) usually succeeds.
    """
    ray = import_ray()
    for attempt in range(1, attempts + 1):
        try:
            return ray.init(**kwargs)
        except Exception as err:  # noqa: BLE001 -- Ray raises a bare Exception for this timeout
            if "timed out during startup" not in str(err) or attempt == attempts:
                raise
            log.warning("Ray start-up timed out (machine overloaded?); trying again")
            ray.shutdown()
    raise AssertionError("unreachable")


@contextlib.contextmanager
def ray_session(options: RayOptions = RayOptions()) -> Iterator[Any]:
    """Connect to (or start) Ray for the block; a session already open by the caller is reused and kept."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": options.log_to_driver,
                              "configure_logging": False}
    if options.address:
        kwargs["address"] = options.address
    else:
        kwargs.update(num_cpus=options.num_cpus, object_store_memory=options.object_store_bytes)
    init_ray(**kwargs)
    try:
        yield ray
    finally:
        ray.shutdown()


def task_slots(ray: Any, options: RayOptions) -> int:
    """How many tasks the cluster runs at once with the requested resources per task."""
    resources = ray.cluster_resources()
    slots = resources.get("CPU", 1.0) / max(options.cpus_per_task, 1e-9)
    if options.gpus_per_task > 0:
        slots = min(slots, resources.get("GPU", 0.0) / options.gpus_per_task)
        if slots < 1:
            raise ConfigError(f"--ray-gpus-per-task {options.gpus_per_task}: the Ray cluster has no GPU")
    return max(1, int(slots))


def _task_results(ray: Any, fn: Callable[..., Any], items: Sequence[T], args: tuple,
                  options: RayOptions) -> Iterator[tuple[T, Any, Exception | None]]:
    """Submit ``fn(item, *args)`` per item; ``(item, result, None)`` or ``(item, None, error)`` as each ends.

    ``error``: the task failed for good (after Ray's retries of a dead worker).
    """
    remote = ray.remote(num_cpus=options.cpus_per_task, num_gpus=options.gpus_per_task, max_retries=2)(fn)
    arg_refs = tuple(ray.put(a) for a in args)  # shared objects go to the object store once, not per task
    item_of = {remote.remote(item, *arg_refs): item for item in items}
    pending = list(item_of)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        try:
            result = ray.get(done[0])
        except Exception as err:  # noqa: BLE001 -- RayTaskError, WorkerCrashedError, ...
            yield item_of[done[0]], None, err
        else:
            yield item_of[done[0]], result, None


def _run_shards(ray: Any, fn: Callable[..., Any], shards: Sequence[Any], args: tuple, options: RayOptions,
                label: str, progress: bool | None, on_result: Callable[[Any], None],
                on_error: Callable[[Any, Exception], None] | None = None) -> None:
    """Submit ``fn(shard, *args)`` per shard; hand each result to ``on_result`` as it arrives.

    A task that failed for good (after Ray's retries of a dead worker) raises here,
    or goes to ``on_error(shard, error)`` when given, and the other shards go on.
    """
    with make_progress(disable=None if progress is None else not progress) as bar:
        task = bar.add_task(f"{label} (ray, {len(shards)} shards)", total=len(shards))
        for shard, result, error in _task_results(ray, fn, shards, args, options):
            if error is None:
                on_result(result)
            elif on_error is None:
                raise error
            else:
                on_error(shard, error)
            bar.advance(task)


# -- extract ----------------------------------------------------------------------------------------------------
def _extract_in_tasks(fn: Callable[..., dict[str, Any]], n_todo: int, make_shards: Callable[[int], list[list[Any]]],
                      args: tuple, options: RayOptions, progress: bool | None) -> ExtractReport:
    """Run ``fn(shard, *args)`` (an :class:`ExtractReport` as a dict) over ``make_shards(task slots)``; merged."""
    report = ExtractReport()
    if n_todo == 0:
        return report
    with ray_session(options) as ray:
        shards = make_shards(task_slots(ray, options))

        def merge(part: dict[str, Any]) -> None:
            for key in ("n_written", "n_frames_encoded", "n_corrupt", "n_missing", "failed"):
                setattr(report, key, getattr(report, key) + part[key])
            report.errors.extend(part["errors"][: MAX_LOGGED_ERRORS - len(report.errors)])

        started = time.perf_counter()
        _run_shards(ray, fn, shards, args, options, "extract", progress, merge)
        report.seconds = time.perf_counter() - started
    return report


def _extract_shard(jobs: list[Any], frame_model: Any, writer: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    report = extract_videos(jobs, frame_model, writer, update_manifest=False, progress=False, **kwargs)
    return dataclasses.asdict(report)


def extract_with_ray(
    dataset: Any,
    frame_model: Any,
    out_dir: str | Path,
    *,
    checkpoint_path: str | Path | None = None,
    batch_size: int = 128,
    workers_per_task: int = 0,
    device: str = "auto",
    framing: str | None = "abaw112",
    options: RayOptions = RayOptions(),
    progress: bool | None = None,
) -> ExtractReport:
    """``extract_features`` with Ray tasks over video shards: the same store, the same resume rule.

    ``workers_per_task`` DataLoader processes decode crops inside each task (0: in the task itself).
    Videos with unreadable crops are not committed; ``ExtractIncomplete`` names them at the end.
    """
    jobs = plan_videos(dataset)
    kwargs = {"batch_size": batch_size, "num_workers": workers_per_task, "device": device, "framing": framing}

    def run(writer: Any) -> ExtractReport:
        todo = [job for job in jobs if not writer.is_done(job.video_id)]

        def shards(slots: int) -> list[list[Any]]:
            n_shards = options.n_shards or default_shard_count(len(todo), slots)
            return balanced_shards(todo, [1 + int(j.has_face.sum()) for j in todo], n_shards)

        return _extract_in_tasks(_extract_shard, len(todo), shards, (frame_model.cpu(), writer, kwargs), options,
                                 progress)

    return extract_into_store(out_dir, frame_model, dataset, [job.video_id for job in jobs], run, checkpoint_path)


def _extract_raw_shard(jobs: list[CropJob], people: dict[str, Any], frame_model: Any, writer: Any,
                       crop_options: CropOptions, kwargs: dict[str, Any]) -> dict[str, Any]:
    report = extract_raw_jobs(jobs, people, frame_model, writer, crop_options, num_workers=0, update_manifest=False,
                              progress=False, **kwargs)
    return dataclasses.asdict(report)


def extract_raw_videos_with_ray(
    root: str | Path,
    frame_model: Any,
    out_dir: str | Path,
    *,
    crop_options: CropOptions = CropOptions(),
    checkpoint_path: str | Path | None = None,
    batch_size: int = 128,
    device: str = "auto",
    options: RayOptions = RayOptions(),
    progress: bool | None = None,
) -> ExtractReport:
    """``extract_raw_videos`` with one Ray task per raw video (its face stage and encoder): the same store.

    A video that cannot be read fails alone, as with the local engine (``ExtractIncomplete`` at the end).
    """
    dataset, crop_jobs, people = plan_raw_videos(root)
    kwargs = {"batch_size": batch_size, "device": device}

    def run(writer: Any) -> ExtractReport:
        todo = unfinished_jobs(crop_jobs, writer)
        return _extract_in_tasks(_extract_raw_shard, len(todo), lambda slots: [[job] for job in todo],
                                 (people, frame_model.cpu(), writer, crop_options, kwargs), options, progress)

    return extract_into_store(out_dir, frame_model, dataset, sorted(people), run, checkpoint_path)


# -- data faces -------------------------------------------------------------------------------------------------
def crop_with_ray(options: RayOptions = RayOptions()) -> CropRunner:
    """A runner for :func:`~affectseq.prepare.face_crops.export_face_crops`: one Ray task per raw video.

    Each task runs the local engine's per-video function (:func:`~affectseq.prepare.face_crops.crop_video`:
    crops published, marker last), so outputs and resume are the local engine's; a task that
    dies for good is that video's one-line failure.
    """
    def run(jobs: Sequence[CropJob], out: Path, crop_options: CropOptions) -> Iterator[tuple[CropJob, int | str]]:
        if not jobs:
            return
        with ray_session(options) as ray:
            for job, outcome, error in _task_results(ray, crop_video, jobs, (out, crop_options), options):
                yield job, describe_failure(job.video, error) if error is not None else outcome

    return run


# -- predict ----------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class RayEngine:
    """The ``ray`` engine of :func:`affectseq.predict.engines.predict_batch`: one Ray task per video shard.

    A shard whose task fails for good (its worker died beyond Ray's retries) loses
    only its unfinished videos' first try: they are retried one per task, and a
    video whose own task fails is that video's failure.
    """

    model: ModelRequest
    ray_options: RayOptions = RayOptions()
    face_source_factory: Any = None  # custom face stages do not travel to Ray tasks
    aligner: Any = None

    @classmethod
    def from_request(cls, model: ModelRequest, ray_options: RayOptions | None = None, **_: Any) -> "RayEngine":
        return cls(model, ray_options or RayOptions())

    def bundle(self) -> Any:
        return self.model.load()

    def run(self, plans: Sequence[VideoPlan | VideoOutcome], options: PredictOptions,
            output_options: OutputOptions, record: OutcomeRecorder) -> None:
        todo = known_outcomes(plans, record)
        if not todo:
            return
        quiet = dataclasses.replace(options, progress=False)  # one bar on the driver, none in the tasks
        ray_options = self.ray_options
        with ray_session(ray_options) as ray:
            n_shards = ray_options.n_shards or default_shard_count(len(todo), task_slots(ray, ray_options))
            lost: list[tuple[VideoPlan, BaseException]] = []
            args = (self.model, quiet, output_options)
            _run_shards(ray, predict_pairs, shard_plans(todo, n_shards), args, ray_options, "predict",
                        options.progress, record, on_error=lambda shard, err: lost.extend((p, err) for p in shard))
            done, unfinished = split_lost(lost)
            record(done)
            if unfinished:  # one task per video now: a task that fails again is that video's failure
                _run_shards(ray, predict_pairs, [[p] for p, _ in unfinished], args, ray_options, "predict (retry)",
                            options.progress, record,
                            on_error=lambda shard, err: record([failed_outcome(shard[0].video, shard[0].out_dir, err)]))


def predict_with_ray(
    inputs: Sequence[str | os.PathLike[str]],
    out_root: str | os.PathLike[str],
    model: ModelRequest,
    options: PredictOptions = PredictOptions(),
    output_options: OutputOptions | None = None,
    *,
    overwrite: bool = False,
    ray_options: RayOptions = RayOptions(),
    on_outcome: Callable[[VideoOutcome], None] | None = None,
) -> BatchReport:
    """The one predict loop (:func:`~affectseq.predict.engines.predict_batch`) on Ray tasks over video shards:
    the same folders and files per video as ``run_batch``."""
    return predict_batch(inputs, out_root, RayEngine(model, ray_options), options, output_options,
                         overwrite=overwrite, on_outcome=on_outcome)
