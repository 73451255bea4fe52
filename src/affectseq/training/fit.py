"""The one training engine: ``fit(task, run_dir, dist)`` trains frame models and sequence models alike.

A :class:`FitTask` says what is trained (its model, batches, loss, validation and what
a best model is saved as); :func:`fit` owns everything else, once for both kinds:

* **run folder** -- ``config.yaml`` + ``run.json`` on a fresh run; ``history.csv`` (one
  row per epoch, rewritten after each); ``checkpoint_last.pt`` (weights, optimiser,
  :class:`TrainState`, config); the task's best model (``checkpoint_best.safetensors``)
  and ``val_predictions.npz`` when the selection score improves; ``train_summary.json``
  at the end;
* **history columns** -- ``epoch``, ``train_loss``, ``val_loss``, ``val_<metric>`` for each
  validation metric (:func:`affectseq.training.scoring.frame_metrics` names), ``val_score``
  (the selection score), ``lr``, ``train_<items>_per_sec``, ``seconds``: validation
  columns start with ``val_``, training ones with ``train_``;
* **resume** -- a run folder that holds a run is refused unless ``resume``; a resumed
  run must have the configuration it started with, except :data:`RESUME_MAY_CHANGE`
  (e.g. more ``epochs``), unless ``allow_config_change``;
* **stopping** -- early stopping after ``patience`` epochs without a better score (0:
  never), a wall-clock budget ``max_minutes`` over all resumes (see :func:`stop_before_epoch`);
* **DDP** -- ``dist`` runs this as one rank: ``batch_size`` is the global batch, the
  task shards batches and gathers validation predictions, time decisions use the ranks'
  mean clock, only rank 0 reads the resume checkpoint, writes files and logs.

Same seed, same data: same metrics on CPU (every random draw of a run is seeded from
``seed`` and the epoch, so a resumed run ends as an uninterrupted one).
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import numpy as np
import torch

from affectseq.config import config_to_dict, load_config
from affectseq.errors import ConfigError, InputError
from affectseq.training import distributed as ddp
from affectseq.training.checkpoints import load_resume_checkpoint, save_resume_checkpoint
from affectseq.training.scoring import selection_score
from affectseq.utils.atomic import atomic_path, write_json_atomic
from affectseq.utils.progress import make_progress
from affectseq.utils.rundir import init_run_dir
from affectseq.utils.threads import torch_threads

log = logging.getLogger(__name__)
LAST = "checkpoint_last.pt"
BEST = "checkpoint_best.safetensors"
# Options a resumed run may change without ``allow_config_change``: they decide how long and
# where it runs, not what it learns.
RESUME_MAY_CHANGE = frozenset({"epochs", "max_minutes", "threads", "num_workers", "device", "eval_batch_size",
                               "allow_incomplete_store"})


@dataclass(frozen=True)
class FitSettings:
    """What the engine needs of a task's config (each config keeps its own field names)."""

    epochs: int
    seed: int
    batch_size: int  # the global batch (split over DDP ranks)
    patience: int  # epochs without a better selection score before stopping; 0: never
    select_metric: str = "auto"  # a validation metric name (with or without val_), or auto
    max_minutes: float | None = None  # wall-clock budget over all resumes
    schedule_clock: str = "steps"  # "time": the task's lr schedule follows the elapsed share of max_minutes
    device: str = "auto"  # auto: this rank's CUDA GPU when there is one, else CPU
    threads: int | None = None  # torch threads while training (the caller's count restored)


@dataclass
class TrainState:
    """What ``checkpoint_last.pt`` carries besides weights, so a resumed run continues exactly."""

    epoch: int = 0  # epochs completed
    step: int = 0
    elapsed_sec: float = 0.0
    best_score: float = -math.inf
    best_epoch: int = 0
    epochs_since_best: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str | None = None


@dataclass
class FitResult:
    """A finished run: its final state and the summary written to ``train_summary.json`` (same on every rank)."""

    state: TrainState
    summary: dict[str, Any]


@dataclass
class TrainResult:
    """What a training run achieved: the one result type of ``train_frames`` and ``train_sequence``.

    ``summary`` is ``train_summary.json`` (frame runs add ``test_metrics`` when there is a test split).
    ``result["key"]`` / ``result.get("key")`` read the summary, as code written when ``train_frames``
    returned that dict still does.
    """

    run_dir: Path
    best_epoch: int
    best_score: float
    history: list[dict[str, float]]
    summary: dict[str, Any]

    @classmethod
    def of(cls, result: FitResult, run_dir: str | Path) -> "TrainResult":
        state = result.state
        return cls(Path(run_dir), state.best_epoch, state.best_score, state.history, dict(result.summary or {}))

    def __getitem__(self, key: str) -> Any:
        return self.summary[key]

    def __contains__(self, key: object) -> bool:
        return key in self.summary

    def get(self, key: str, default: Any = None) -> Any:
        return self.summary.get(key, default)


def epoch_callback(on_epoch_end: Callable[[int, dict[str, float]], None] | None
                   ) -> Callable[[TrainState, dict[str, float]], None] | None:
    """A training entry point's ``on_epoch_end(epoch, row)`` as :func:`fit`'s ``(state, row)`` callback."""
    if on_epoch_end is None:
        return None
    return lambda state, row: on_epoch_end(state.epoch, row)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed every per-epoch draw of a run takes (1-based ``epoch``): shuffling, augmentation, dropout.

    The one formula of both training tasks, so a resumed run redraws exactly what an uninterrupted one drew;
    ranks other than 0 draw their own dropout masks.
    """
    return seed * 1000 + (epoch - 1) + 7919 * rank


class FitTask(Protocol):
    """What one kind of model brings to :func:`fit`; the methods are called in this order."""

    config: Any  # the run's config dataclass (config.yaml; compared on resume)
    settings: FitSettings
    items_name: str  # what a batch holds, for the throughput column: "images", "windows"
    sync_batchnorm: bool  # convert BatchNorm to SyncBatchNorm under DDP on GPUs

    def prepare(self, ctx: ddp.DistContext) -> None:
        """Load the data (before the model is seeded and built)."""

    def build_model(self) -> torch.nn.Module:
        """The untrained model (torch's global generator is seeded just before)."""

    def init_fresh(self, model: torch.nn.Module) -> None:
        """Initialise a fresh run's model further (e.g. a warm start); not called on resume."""

    def make_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        """The optimiser of the (placed, possibly DDP-wrapped) model."""

    def setup(self, model: torch.nn.Module, device: torch.device, ctx: ddp.DistContext, run_dir: Path) -> int:
        """Everything the epochs need (datasets, loaders, weights); returns the optimiser steps per epoch."""

    def learning_rate(self, progress: float) -> float:
        """The learning rate at training progress in [0, 1]."""

    def batches(self, epoch: int, ctx: ddp.DistContext) -> Iterable[Any]:
        """This rank's training batches of ``epoch`` (1-based), ready for :meth:`loss`; reseeds the epoch's draws."""

    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        """The training loss of one batch."""

    def validate(self, model: torch.nn.Module, ctx: ddp.DistContext) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """(metrics, predictions with the mean loss as ``loss``) on all validation items, the same on every rank."""

    def save_best(self, run_dir: Path, model: torch.nn.Module, state: TrainState, metrics: dict[str, float],
                  pred: dict[str, np.ndarray]) -> None:
        """Write the best model and its validation predictions (rank 0)."""

    def finish(self, run_dir: Path, state: TrainState) -> dict[str, Any]:
        """Work after the last epoch (e.g. testing the best model), rank 0; extra summary entries."""


def fit(task: FitTask, run_dir: str | Path, dist: ddp.DistContext | None = None, resume: bool = False,
        allow_config_change: bool = False, command: str | None = None, progress: bool | None = None,
        on_epoch_end: Callable[[TrainState, dict[str, float]], None] | None = None) -> FitResult:
    """Train ``task`` into ``run_dir`` (see the module docstring); returns the same result on every rank.

    ``dist``: this process's rank of a DDP job (every rank calls ``fit`` alike); ``None``:
    one process. ``progress``: show a progress bar (None: when stderr is a terminal).
    ``on_epoch_end(state, row)`` is called on rank 0 after each epoch's files are written.
    """
    with torch_threads(task.settings.threads):
        return _fit(task, Path(run_dir), dist or ddp.DistContext(), resume, allow_config_change, command,
                    progress, on_epoch_end)


def _fit(task: FitTask, run_dir: Path, ctx: ddp.DistContext, resume: bool, allow_config_change: bool,
         command: str | None, progress: bool | None,
         on_epoch_end: Callable[[TrainState, dict[str, float]], None] | None) -> FitResult:
    s = task.settings
    if s.batch_size % ctx.world_size:
        raise ConfigError(f"batch_size={s.batch_size} (the global batch) must be divisible by the "
                          f"{ctx.world_size} ranks")
    device = ctx.device(s.device)  # first: a device the machine lacks is refused before any collective call
    last = run_dir / LAST
    # Rank 0 decides and reads for all: the run directory may be on its node only.
    if not resume and ddp.broadcast_object(ctx.is_main and last.exists(), ctx):
        raise InputError(run_dir, "run directory already holds a training run; pass --resume or use a new --out")
    task.prepare(ctx)
    # Kept on purpose: module constructors draw initial weights from torch's global generator (they take
    # no generator), so seeding it is what makes a run's initial weights reproducible.
    torch.manual_seed(s.seed)
    plain = task.build_model()
    saved = ddp.broadcast_object(load_resume_checkpoint(last)  # weights_only: a file never runs code
                                 if ctx.is_main and resume and last.exists() else None, ctx)
    if saved is not None:
        check_resume_config(in_current_form(saved.get("config"), type(task.config)), config_to_dict(task.config),
                            allow_config_change, last)
        plain.load_state_dict(saved["model"])
    else:
        task.init_fresh(plain)  # a fresh run only: a resumed one must not depend on e.g. a donor model
    model = ddp.prepare_model(plain, ctx, device, sync_batchnorm=task.sync_batchnorm)
    optimizer = task.make_optimizer(model)
    state = TrainState()
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        state = restore_state(saved["state"])
        log.info("resuming %s after epoch %d (%.1f min used)", run_dir, state.epoch, state.elapsed_sec / 60)
    elif ctx.is_main:
        init_run_dir(run_dir, task.config, s.seed, command)
    steps_per_epoch = task.setup(model, device, ctx, run_dir)
    _Epochs(task, run_dir, ctx, model, optimizer, state, steps_per_epoch, on_epoch_end).run(progress)
    summary = _finish(task, run_dir, state) if ctx.is_main else None
    return FitResult(state, ddp.broadcast_object(summary, ctx))


class _Epochs:
    """The epoch loop of one :func:`fit` call (split from it to keep each step readable)."""

    def __init__(self, task: FitTask, run_dir: Path, ctx: ddp.DistContext, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, state: TrainState, steps_per_epoch: int,
                 on_epoch_end: Callable[[TrainState, dict[str, float]], None] | None):
        self.task, self.s, self.run_dir, self.ctx = task, task.settings, run_dir, ctx
        self.model, self.optimizer, self.state, self.on_epoch_end = model, optimizer, state, on_epoch_end
        self.total_steps = max(1, steps_per_epoch * self.s.epochs)
        self.budget_sec = self.s.max_minutes * 60 if self.s.max_minutes else None
        self.session_start = time.monotonic() - state.elapsed_sec

    def clock(self) -> float:
        """Seconds of training over all resumes; under DDP with a budget the ranks' mean, so all decide alike."""
        now = time.monotonic() - self.session_start
        return ddp.reduce_mean(now, 1, self.ctx) if self.ctx.enabled and self.budget_sec else now

    def run(self, progress: bool | None) -> None:
        s, state = self.s, self.state
        state.stop_reason = None  # a resumed run may continue with a larger epochs/max_minutes
        show = None if progress is None else progress
        with make_progress(disable=(None if show is None else not show) if self.ctx.is_main else True) as bar:
            while state.epoch < s.epochs and state.stop_reason is None:
                if s.patience and state.epochs_since_best >= s.patience:
                    state.stop_reason = f"early stopping: no improvement for {state.epochs_since_best} epochs"
                elif self.budget_sec and stop_before_epoch(self.clock(), state.epoch, self.budget_sec,
                                                           s.schedule_clock):
                    state.stop_reason = f"time budget of {s.max_minutes} min"
                else:
                    self.epoch(bar)
        if state.stop_reason is None:
            state.stop_reason = f"completed {s.epochs} epochs"

    def train_epoch(self, bar: Any) -> tuple[list[float], float]:
        """One epoch's optimiser steps; returns the batch losses and the last learning rate."""
        s, state, task = self.s, self.state, self.task
        epoch = state.epoch + 1
        self.model.train()
        batches = task.batches(epoch, self.ctx)
        bar_id = bar.add_task(f"epoch {epoch}/{s.epochs}", total=None)
        losses: list[float] = []
        lr = task.learning_rate(0.0)
        for batch in batches:
            now = self.clock()
            frac = state.step / self.total_steps
            if s.schedule_clock == "time" and self.budget_sec:
                frac = max(frac, now / self.budget_sec)
            lr = task.learning_rate(min(frac, 1.0))
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            loss = task.loss(self.model, batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            state.step += 1
            losses.append(float(loss.detach()))
            bar.update(bar_id, advance=1, description=f"epoch {epoch} loss {np.mean(losses[-50:]):.3f}")
            if self.budget_sec and now > self.budget_sec:
                state.stop_reason = f"time budget of {s.max_minutes} min (mid-epoch)"
                break
        bar.remove_task(bar_id)
        return losses, lr

    def epoch(self, bar: Any) -> None:
        """Train one epoch, validate, select, write the epoch's files."""
        s, state, task, ctx = self.s, self.state, self.task, self.ctx
        started = time.monotonic()
        losses, lr = self.train_epoch(bar)
        train_sec = time.monotonic() - started
        metrics, pred = task.validate(self.model, ctx)
        # The gathered predictions are the same on every rank, so are the score and early stopping.
        score = selection_score(metrics, _metric_name(s.select_metric))
        score = score if np.isfinite(score) else -math.inf
        state.epoch += 1
        row = {"epoch": state.epoch, "train_loss": ddp.reduce_mean(float(np.sum(losses)), len(losses), ctx),
               "val_loss": float(pred["loss"]), **{f"val_{k}": v for k, v in metrics.items()}, "val_score": score,
               "lr": lr, f"train_{task.items_name}_per_sec": len(losses) * s.batch_size / max(train_sec, 1e-9),
               "seconds": time.monotonic() - started}
        state.history.append(row)
        improved = score > state.best_score
        if improved:
            state.best_score, state.best_epoch, state.epochs_since_best = score, state.epoch, 0
        else:
            state.epochs_since_best += 1
        state.elapsed_sec = time.monotonic() - self.session_start
        if ctx.is_main:
            plain = ddp.unwrap(self.model)
            if improved:
                task.save_best(self.run_dir, plain, state, metrics, pred)
            write_history(self.run_dir / "history.csv", state.history)
            save_resume_checkpoint(self.run_dir / LAST, {
                "model": plain.state_dict(), "optimizer": self.optimizer.state_dict(), "state": asdict(state),
                "config": config_to_dict(task.config)})
            log.info("epoch %d: train_loss %.4f val_loss %.4f %s%s (%.0f s)", state.epoch, row["train_loss"],
                     row["val_loss"], " ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
                     " *best*" if improved else "", row["seconds"])
            if self.on_epoch_end is not None:
                self.on_epoch_end(state, row)
        ddp.barrier(ctx)  # no rank starts the next epoch (or returns) before rank 0 has written this one


def _finish(task: FitTask, run_dir: Path, state: TrainState) -> dict[str, Any]:
    """Rank 0: the task's final work, then ``train_summary.json``."""
    summary: dict[str, Any] = {"epochs_completed": state.epoch, "best_epoch": state.best_epoch,
                               "best_score": state.best_score, "stop_reason": state.stop_reason,
                               "minutes": state.elapsed_sec / 60,
                               "val_metrics": state.history[state.best_epoch - 1] if state.best_epoch else None}
    summary.update(task.finish(run_dir, state))
    write_json_atomic(run_dir / "train_summary.json", summary)
    log.info("done: %s; best epoch %d; outputs in %s", state.stop_reason, state.best_epoch, run_dir)
    return summary


def _metric_name(select_metric: str) -> str:
    """A selection metric as :func:`selection_score` names it (history.csv's ``val_`` prefix dropped)."""
    return select_metric[len("val_"):] if select_metric.startswith("val_") else select_metric


def stop_before_epoch(elapsed_sec: float, epochs_done: int, budget_sec: float, schedule_clock: str) -> bool:
    """Whether a run with a wall-time budget should stop instead of starting another epoch.

    Step-clocked schedule: stop when the next epoch (projected at the mean epoch time so far)
    would overrun the budget by more than 2%, so the budget is a hard limit. Time-clocked
    schedule: the learning rate anneals to its minimum exactly at the budget, so keep training
    until the budget is reached (the loop then stops mid-epoch and evaluates those weights);
    stopping at the last whole epoch could skip most of the annealing when epochs are long.
    """
    if schedule_clock == "time":
        return elapsed_sec >= budget_sec
    return epochs_done > 0 and elapsed_sec + elapsed_sec / epochs_done > budget_sec * 1.02


def run_config_source(config_path: str | Path | None, run_dir: str | Path, resume: bool) -> str | Path | None:
    """The YAML a CLI run starts its config from: on resume the run's own ``config.yaml`` (overrides extend it)."""
    saved = Path(run_dir) / "config.yaml"
    return saved if resume and saved.exists() else config_path


def check_resume_config(saved: dict[str, Any] | None, current: dict[str, Any], allow_change: bool,
                        path: Path) -> None:
    """Refuse to resume with a configuration other than the run's (beyond :data:`RESUME_MAY_CHANGE`).

    Options the checkpoint does not record (added to the config after it was written) are not
    compared; a checkpoint without any config (written before the check existed) passes.
    """
    if saved is None or allow_change:
        return
    changed = sorted(k for k in current if k in saved and k not in RESUME_MAY_CHANGE and saved[k] != current[k])
    if changed:
        raise ConfigError(f"{path}: the run was started with a different configuration ({', '.join(changed)}); "
                          "resume with the same options, allow the change explicitly, or use a new run directory")


def in_current_form(saved: dict[str, Any] | None, config_type: type) -> dict[str, Any] | None:
    """A resume checkpoint's config as this affectseq spells it (renamed options, ``model.cell`` -> ``model.arch``
    with complete ``args``), so a run started before a rename compares equal; as saved when it no longer loads.

    Only the options the checkpoint recorded (or their new names) are kept: others are not compared.
    """
    if saved is None:
        return None
    try:
        current = config_to_dict(load_config(config_type, overrides=saved))
    except ConfigError:
        return saved
    renamed = getattr(config_type, "RENAMED", {})
    recorded = set(saved) | {new for old, new in renamed.items() if old in saved}
    return {k: v for k, v in current.items() if k in recorded}


def restore_state(saved: dict[str, Any]) -> TrainState:
    """The :class:`TrainState` of a resume checkpoint (also those written by the older sequence loop)."""
    known = {f.name for f in fields(TrainState)}
    values = {k: v for k, v in saved.items() if k in known}
    if "bad_epochs" in saved:  # the sequence loop's name before the single engine
        values.setdefault("epochs_since_best", saved["bad_epochs"])
    return TrainState(**values)


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    """``history.csv``: one row per epoch, the columns in order of first appearance (atomically)."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(history)
