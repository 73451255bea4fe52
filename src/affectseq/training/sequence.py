"""Stage-2 training: a GRU/LSTM on windows of stored frame features (``affectseq train sequence``).

The run directory follows the project contract: ``config.yaml`` + ``run.json``,
``history.csv`` (one row per epoch), ``checkpoint_last.pt`` (everything needed to
resume: weights, optimiser, early-stopping state, history),
``checkpoint_best.safetensors`` (see :mod:`affectseq.modelfile.sequence`) and
``val_predictions.npz`` written with the best model.

Reproducibility: the model is initialised from ``seed``, and every epoch reseeds
its window order and dropout from ``(seed, epoch)``, so an interrupted run resumed
with ``resume=True`` ends with the same weights as an uninterrupted one (on CPU).

The same loop runs one rank of a DDP job when given a ``ctx``
(``affectseq scale train-sequence``, :mod:`affectseq.scale.ddp_sequence`): with a
plain batch-mean loss, ``W`` ranks take the same steps as one process.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
import torch

from affectseq.config import config_to_dict
from affectseq.errors import ConfigError, InputError
from affectseq.features.store import FeatureStore
from affectseq.models.temporal import TemporalConfig, TemporalModel
from affectseq.sequences.dataset import WindowDataset, balanced_window_indices, collate_windows
from affectseq.sequences.windows import WindowSpec
from affectseq.training import distributed as ddp
from affectseq.modelfile.sequence import BEST_NAME, save_sequence_checkpoint
from affectseq.training.checkpoints import load_resume_checkpoint, save_resume_checkpoint
from affectseq.training.scoring import frame_metrics, selection_score
from affectseq.training.sequence_eval import predict_windows, window_loss, write_sequence_predictions
from affectseq.utils.atomic import write_text_atomic
from affectseq.utils.progress import make_progress
from affectseq.utils.rundir import init_run_dir

log = logging.getLogger(__name__)
LAST_NAME = "checkpoint_last.pt"


@dataclass(frozen=True)
class SequenceModelConfig:
    """Temporal network architecture (defaults: the paper's GRU 100 -> 100 -> 50)."""

    cell: Literal["gru", "lstm"] = "gru"
    hidden_sizes: tuple[int, ...] = (100, 100, 50)
    bidirectional: bool = False
    dropout: float = 0.0
    mask_channel: bool = True


@dataclass(frozen=True)
class SequenceTrainConfig:
    """Everything a sequence run depends on (saved as ``config.yaml``; override with ``key=value``)."""

    task: Literal["expr", "va", "multi"] = "expr"
    mode: Literal["seq2one", "seq2seq"] = "seq2one"
    window: int = 100  # frames per window (the paper: 100)
    stride: int | None = None  # anchor step of training windows; None: 1 (seq2one) / window (seq2seq)
    pad_start: bool = False  # seq2one: also train/predict frames t < window from left-padded windows
    model: SequenceModelConfig = field(default_factory=SequenceModelConfig)
    epochs: int = 30
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 5  # epochs without a better validation score before stopping
    select_metric: str = "auto"  # a history.csv metric (without val_), or auto: mean ABAW score of the tasks
    va_loss: Literal["ccc", "mse"] = "ccc"
    balance: Literal["none", "expr_downsample", "expr_oversample", "va_downsample"] = "none"  # window-level
    class_weighted: bool = False  # expr loss weighted by inverse class frequency of the training frames
    max_windows_per_epoch: int | None = None  # a fresh random subset each epoch (Aff-Wild2 has ~3M windows)
    max_val_windows: int | None = None  # a fixed evenly spaced subset for validation
    train_split: str = "train"
    val_split: str = "validation"
    num_workers: int = 0
    device: str = "cpu"
    seed: int = 0
    # Train on a store whose extraction is unfinished (fewer videos than planned): warn instead of refusing.
    allow_incomplete_store: bool = False

    def __post_init__(self) -> None:
        if self.window < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("window, epochs and batch_size must be >= 1")


@dataclass
class SequenceRunResult:
    """What a finished (or early-stopped) run achieved."""

    run_dir: Path
    best_epoch: int
    best_score: float
    history: list[dict[str, float]]


def resolve_tasks(store: FeatureStore, task: str) -> tuple[str, ...]:
    """The tasks trained: ``expr``/``va`` alone, or ``multi`` = every task the store has labels for."""
    tasks = tuple(t for t in ("expr", "va", "au") if t in store.tasks) if task == "multi" else (task,)
    missing = [t for t in tasks if t not in store.tasks]
    if missing or not tasks:
        raise InputError(store.root / "manifest.json", f"store has no {'/'.join(missing or [task])} labels "
                         f"(tasks: {', '.join(store.tasks) or 'none'})")
    return tasks


def build_model(config: SequenceTrainConfig, input_dim: int, tasks: tuple[str, ...], n_classes: int) -> TemporalModel:
    """The temporal model of ``config`` with one head per task."""
    sizes = {"expr": n_classes, "va": 2, "au": 13}
    m = config.model
    arch = TemporalConfig(cell=m.cell, hidden_sizes=tuple(m.hidden_sizes), bidirectional=m.bidirectional,
                          dropout=m.dropout, mode=config.mode, mask_channel=m.mask_channel)
    return TemporalModel(input_dim, {t: sizes[t] for t in tasks}, arch)


def make_datasets(store: FeatureStore, config: SequenceTrainConfig, tasks: tuple[str, ...]):
    """(train, validation) window datasets; validation seq2seq windows never overlap (each frame once)."""
    split_task = tasks[0] if len(tasks) == 1 else "multi"
    train_ids = store.video_ids(split_task, config.train_split)
    val_ids = store.video_ids(split_task, config.val_split)
    if not train_ids or not val_ids:
        raise InputError(store.root / "manifest.json",
                         f"need videos in splits {config.train_split!r} and {config.val_split!r} for {split_task} "
                         f"(store splits: {', '.join(store.splits(tasks[0])) or 'none'})")
    spec = WindowSpec(mode=config.mode, length=config.window, stride=config.stride, tasks=tasks,
                      pad_start=config.pad_start)
    val_spec = WindowSpec(mode=config.mode, length=config.window, stride=None, tasks=tasks, pad_start=config.pad_start)
    allow = config.allow_incomplete_store
    return (WindowDataset(store, train_ids, spec, split=config.train_split, allow_incomplete=allow),
            WindowDataset(store, val_ids, val_spec, split=config.val_split, allow_incomplete=allow))


def _expr_class_weights(store: FeatureStore, dataset: WindowDataset, n_classes: int) -> torch.Tensor:
    from affectseq.data.balance import class_weights

    labels = np.concatenate([np.asarray(store.labels(v)["expr"]) for v in dataset.video_ids])
    return torch.from_numpy(class_weights(labels, n_classes))


def epoch_order(pool: np.ndarray, config: SequenceTrainConfig, epoch: int) -> np.ndarray:
    """The global window order of ``epoch``: a permutation of ``pool`` seeded by ``(seed, epoch)``."""
    rng = np.random.default_rng([config.seed, epoch])
    order = rng.permutation(pool)
    if config.max_windows_per_epoch is not None:
        order = order[: config.max_windows_per_epoch]
    return order


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    write_text_atomic(path, pd.DataFrame(history).to_csv(index=False))


def _device(config: SequenceTrainConfig, ctx: ddp.DistContext) -> torch.device:
    if ctx.enabled:
        return ctx.device(config.device)  # each rank its own GPU
    return torch.device("cuda" if config.device == "auto" and torch.cuda.is_available() else
                        ("cpu" if config.device == "auto" else config.device))


def _validate(model: torch.nn.Module, val_eval: Any, config: SequenceTrainConfig, device: torch.device,
              ctx: ddp.DistContext) -> dict[str, np.ndarray]:
    """Predictions on every validation window; under DDP each rank predicts its block and all are gathered."""
    if not ctx.enabled:
        return predict_windows(model, val_eval, config.eval_batch_size, device, config.va_loss, config.num_workers)
    block = ddp.shard_contiguous(len(val_eval), ctx)
    part = torch.utils.data.Subset(val_eval, block.tolist())
    pred = predict_windows(ddp.unwrap(model), part, config.eval_batch_size, device, config.va_loss,
                           config.num_workers)
    return ddp.gather_predictions(pred, -(-len(block) // config.eval_batch_size), ctx)


def train_sequence(
    store_path: str | Path,
    run_dir: str | Path,
    config: SequenceTrainConfig = SequenceTrainConfig(),
    resume: bool = False,
    progress: bool | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    command: str | None = None,
    ctx: ddp.DistContext | None = None,
) -> SequenceRunResult:
    """Train a temporal model on a feature store; see the module docstring for the run directory.

    ``ctx`` runs this as one rank of a DDP job (every rank calls it with the same
    arguments; see :mod:`affectseq.training.distributed`): ``config.batch_size`` is
    then the global batch, each rank takes its share of the same seeded epoch order,
    validation predictions are gathered from all ranks, and only rank 0 reads the
    resume checkpoint, writes the run directory, shows progress and calls
    ``on_epoch_end``. ``None``: one process.
    """
    ctx = ctx or ddp.DistContext()
    if config.batch_size % ctx.world_size:
        raise ConfigError(f"batch_size={config.batch_size} (the global batch) must be divisible by the "
                          f"{ctx.world_size} ranks")
    run_dir = Path(run_dir)
    store = FeatureStore(store_path)
    tasks = resolve_tasks(store, config.task)
    n_classes = len(store.expr_classes) or 7
    train_ds, val_ds = make_datasets(store, config, tasks)
    if len(train_ds) == 0 or len(val_ds) == 0:
        raise InputError(store.root, f"no windows to train on ({len(train_ds)} train, {len(val_ds)} validation); "
                         f"are videos shorter than window={config.window}?")
    pool = np.arange(len(train_ds))
    if config.balance != "none":
        if config.mode != "seq2one":
            raise ConfigError(f"balance={config.balance} balances seq2one windows by their target; "
                              "seq2seq windows have no single target (use class_weighted=true)")
        try:
            pool = balanced_window_indices(train_ds, tasks[0], config.balance, random_state=config.seed)
        except ValueError as err:
            raise ConfigError(f"balance={config.balance}: {err}") from None
    if config.max_val_windows is not None and len(val_ds) > config.max_val_windows:
        keep = np.linspace(0, len(val_ds) - 1, config.max_val_windows).round().astype(np.int64)
        val_eval: Any = torch.utils.data.Subset(val_ds, keep.tolist())  # rows still index val_ds.video_ids
    else:
        val_eval = val_ds
    device = _device(config, ctx)

    torch.manual_seed(config.seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    plain = build_model(config, store.feature_dim, tasks, n_classes)
    state: dict[str, Any] = {"epoch": 0, "best_score": -math.inf, "best_epoch": 0, "bad_epochs": 0, "history": []}
    last_path = run_dir / LAST_NAME
    # Rank 0 reads the checkpoint and hands it to the others: their nodes need not mount the run directory.
    saved = ddp.broadcast_object(load_resume_checkpoint(last_path, ("model", "optimizer", "state", "config"))
                                 if ctx.is_main and resume and last_path.exists() else None, ctx)
    if saved is not None:
        if _resume_config(saved["config"]) != _resume_config(config_to_dict(config)):
            raise ConfigError(f"{last_path}: the run was started with a different configuration; "
                              "resume with the same options or use a new run directory")
        plain.load_state_dict(saved["model"])
    model = ddp.prepare_model(plain, ctx, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
        log.info("resuming %s after epoch %d", run_dir, state["epoch"])
    elif ctx.is_main:
        init_run_dir(run_dir, config, config.seed, command)
    weights = _expr_class_weights(store, train_ds, n_classes).to(device) if config.class_weighted and \
        "expr" in tasks else None
    frame_ckpt = store.frame_model_file()  # the store's own copy: the frame run folder may be gone
    info = {"mode": config.mode, "window": config.window, "tasks": list(tasks),
            "expr_classes": list(store.expr_classes) if "expr" in tasks else [],
            "encoder": store.encoder, "store_checkpoint_sha256": store.checkpoint_sha256,
            "fps": store.fps(train_ds.video_ids),
            "meta": {"store": str(store.root), "run_dir": str(run_dir),
                     **({"world_size": ctx.world_size} if ctx.enabled else {})}}
    # Global step i covers order[i*B:(i+1)*B] whatever the number of ranks (rank r takes the r-th block).
    sampler = ddp.FixedOrderSampler(lambda e: epoch_order(pool, config, e), config.batch_size // ctx.world_size, ctx)

    show = progress if ctx.is_main else False
    with make_progress(disable=None if show is None else not show) as bar:
        for epoch in range(state["epoch"] + 1, config.epochs + 1):
            if state["bad_epochs"] >= config.patience:
                break
            started = time.perf_counter()
            sampler.set_epoch(epoch)
            # Dropout of this epoch, reproducible on resume; ranks other than 0 draw their own masks.
            torch.manual_seed(config.seed * 100_003 + epoch + 7919 * ctx.rank)
            loader = torch.utils.data.DataLoader(train_ds, batch_size=sampler.batch_size, sampler=sampler,
                                                 collate_fn=collate_windows, num_workers=config.num_workers)
            task_id = bar.add_task(f"epoch {epoch}/{config.epochs}", total=len(loader))
            model.train()
            losses = []
            for batch in loader:
                loss, _ = window_loss(model, batch, device, config.va_loss, weights)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                bar.advance(task_id)
            bar.remove_task(task_id)

            pred = _validate(model, val_eval, config, device, ctx)
            # Gathered predictions are identical on every rank, so are the score and the stop decision.
            scores = frame_metrics(pred, n_classes)
            score = selection_score(scores, config.select_metric)
            score = -math.inf if not np.isfinite(score) else score
            row = {"epoch": epoch, "train_loss": ddp.reduce_mean(float(np.sum(losses)), len(losses), ctx),
                   "val_loss": float(pred["loss"]), **{f"val_{k}": v for k, v in scores.items()},
                   "val_score": score, "seconds": round(time.perf_counter() - started, 3)}
            state["history"].append(row)
            improved = score > state["best_score"]
            if improved:
                state.update(best_score=score, best_epoch=epoch, bad_epochs=0)
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch
            if ctx.is_main:
                _write_epoch(run_dir, model, optimizer, state, config, info, pred, val_ds, store, frame_ckpt,
                             improved)
                log.info("epoch %d: train_loss %.4f val_loss %.4f val_score %.4f (best %.4f @ %d)", epoch,
                         row["train_loss"], row["val_loss"], score, state["best_score"], state["best_epoch"])
                if on_epoch_end is not None:
                    on_epoch_end(epoch, row)
            ddp.barrier(ctx)  # no rank starts the next epoch (or returns) before rank 0 has written this one
    return SequenceRunResult(run_dir, state["best_epoch"], state["best_score"], state["history"])


def _resume_config(config: dict[str, Any]) -> dict[str, Any]:
    """The options a resumed run must share with its start (``allow_incomplete_store`` does not change training)."""
    return {k: v for k, v in config.items() if k != "allow_incomplete_store"}


def _write_epoch(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any],
                 config: SequenceTrainConfig, info: dict[str, Any], pred: dict[str, np.ndarray], val_ds: Any,
                 store: FeatureStore, frame_ckpt: str | None, improved: bool) -> None:
    """Rank 0's writes after an epoch: best checkpoint and predictions when improved, history, resume state."""
    plain = ddp.unwrap(model)
    if improved:
        save_sequence_checkpoint(run_dir / BEST_NAME, plain, {**info, "epoch": state["epoch"],
                                                               "val_score": state["best_score"]},
                                 frame_checkpoint=frame_ckpt)
        write_sequence_predictions(run_dir / "val_predictions.npz", pred, val_ds.video_ids, store.expr_classes)
    _write_history(run_dir / "history.csv", state["history"])
    save_resume_checkpoint(run_dir / LAST_NAME, {"model": plain.state_dict(), "optimizer": optimizer.state_dict(),
                                                 "state": state, "config": config_to_dict(config)})
