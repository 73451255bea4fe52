"""Sequence training (stage 2) under PyTorch DDP (``affectseq scale train-sequence``, with ``torchrun`` or ``--nproc``).

The loop mirrors :func:`affectseq.training.sequence.train_sequence` and reuses its
building blocks (datasets, model, loss, validation predictions, metrics,
checkpoints), with the distributed parts from :mod:`affectseq.training.distributed`:

* ``config.batch_size`` is the **global** batch; each of ``W`` ranks takes
  ``batch_size / W`` windows of the same seeded epoch order as the single-process
  loop (:class:`~affectseq.training.distributed.FixedOrderSampler`), so a global
  step sees the same windows whatever ``W`` is;
* validation windows are split into contiguous blocks over ranks and the
  predictions gathered, so metrics (CCC, F1) are computed on every validation
  window exactly once, identically on all ranks (early stopping agrees);
* only rank 0 writes the run directory (config, history, checkpoints,
  ``val_predictions.npz``) -- same contract as the single-process run.

A one-rank run takes the same steps as ``train_sequence`` except that a last
partial batch of an epoch is dropped when ``W > 1``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from affectseq.config import config_to_dict
from affectseq.errors import ConfigError, InputError
from affectseq.features.store import FeatureStore
from affectseq.sequences.dataset import balanced_window_indices, collate_windows
from affectseq.training import distributed as ddp
from affectseq.training.checkpoints import BEST_NAME, save_sequence_checkpoint
from affectseq.training.frame_eval import frame_metrics, selection_score
from affectseq.training.sequence import (
    LAST_NAME,
    SequenceRunResult,
    SequenceTrainConfig,
    build_model,
    make_datasets,
    resolve_tasks,
)
from affectseq.training.sequence_eval import predict_windows, window_loss, write_sequence_predictions
from affectseq.utils.atomic import atomic_path, write_text_atomic
from affectseq.utils.rundir import init_run_dir

log = logging.getLogger(__name__)


def epoch_order(pool: np.ndarray, config: SequenceTrainConfig, epoch: int) -> np.ndarray:
    """The global window order of ``epoch``: the same seeded permutation as the single-process loop."""
    order = np.random.default_rng([config.seed, epoch]).permutation(pool)
    if config.max_windows_per_epoch is not None:
        order = order[: config.max_windows_per_epoch]
    return order


def _validate(model: torch.nn.Module, val_eval: Any, config: SequenceTrainConfig, device: torch.device,
              ctx: ddp.DistContext) -> dict[str, np.ndarray]:
    """Predictions on every validation window, gathered from all ranks in window order."""
    block = ddp.shard_contiguous(len(val_eval), ctx)
    part = torch.utils.data.Subset(val_eval, block.tolist())
    pred = predict_windows(ddp.unwrap(model), part, config.eval_batch_size, device, config.va_loss,
                           config.num_workers)
    n_batches = -(-len(block) // config.eval_batch_size)
    loss_sum = float(pred.pop("loss")) * n_batches
    gathered = ddp.gather_arrays(pred, ctx)
    gathered["loss"] = np.asarray(ddp.reduce_mean(loss_sum, n_batches, ctx))
    return gathered


def train_sequence_distributed(
    store_path: str | Path,
    run_dir: str | Path,
    config: SequenceTrainConfig = SequenceTrainConfig(),
    ctx: ddp.DistContext | None = None,
    resume: bool = False,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    command: str | None = None,
) -> SequenceRunResult:
    """Train a temporal model on a feature store with data parallelism over the ranks of ``ctx``.

    Every rank calls this with the same arguments (``ctx`` defaults to the current
    process group; single process when none). Returns the same result on every rank.
    """
    ctx = ctx or ddp.current_context()
    if config.batch_size % ctx.world_size:
        raise ConfigError(f"batch_size={config.batch_size} (the global batch) must be divisible by the "
                          f"{ctx.world_size} ranks")
    run_dir = Path(run_dir)
    store = FeatureStore(store_path)
    tasks = resolve_tasks(store, config.task)
    n_classes = len(store.expr_classes) or 7
    train_ds, val_ds = make_datasets(store, config, tasks)
    if len(train_ds) == 0 or len(val_ds) == 0:
        raise InputError(store.root, f"no windows to train on ({len(train_ds)} train, {len(val_ds)} validation)")
    pool = np.arange(len(train_ds))
    if config.balance != "none":
        pool = balanced_window_indices(train_ds, tasks[0], config.balance, random_state=config.seed)
    val_eval: Any = val_ds
    if config.max_val_windows is not None and len(val_ds) > config.max_val_windows:
        keep = np.linspace(0, len(val_ds) - 1, config.max_val_windows).round().astype(np.int64)
        val_eval = torch.utils.data.Subset(val_ds, keep.tolist())
    device = ctx.device(config.device)

    torch.manual_seed(config.seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    plain = build_model(config, store.feature_dim, tasks, n_classes)
    state: dict[str, Any] = {"epoch": 0, "best_score": -math.inf, "best_epoch": 0, "bad_epochs": 0, "history": []}
    last_path = run_dir / LAST_NAME
    saved = torch.load(last_path, map_location="cpu", weights_only=False) if resume and last_path.exists() else None
    if saved is not None:
        if saved["config"] != config_to_dict(config):
            raise ConfigError(f"{last_path}: the run was started with a different configuration")
        plain.load_state_dict(saved["model"])
        state = saved["state"]
    model = ddp.prepare_model(plain, ctx, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
    elif ctx.is_main:
        init_run_dir(run_dir, config, config.seed, command)
    weights = None
    if config.class_weighted and "expr" in tasks:
        from affectseq.data.balance import class_weights

        labels = np.concatenate([np.asarray(store.labels(v)["expr"]) for v in train_ds.video_ids])
        weights = torch.from_numpy(class_weights(labels, n_classes)).to(device)
    frame_ckpt = store.manifest.get("checkpoint_path")
    frame_ckpt = frame_ckpt if frame_ckpt and Path(frame_ckpt).is_file() else None
    info = {"mode": config.mode, "window": config.window, "tasks": list(tasks),
            "expr_classes": list(store.expr_classes) if "expr" in tasks else [],
            "encoder": store.encoder, "store_checkpoint_sha256": store.checkpoint_sha256,
            "meta": {"store": str(store.root), "run_dir": str(run_dir), "world_size": ctx.world_size}}
    sampler = ddp.FixedOrderSampler(lambda e: epoch_order(pool, config, e), config.batch_size // ctx.world_size, ctx)

    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        if state["bad_epochs"] >= config.patience:
            break
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        torch.manual_seed(config.seed * 100_003 + epoch + 7919 * ctx.rank)  # dropout: reproducible, per rank
        loader = torch.utils.data.DataLoader(train_ds, batch_size=sampler.batch_size, sampler=sampler,
                                             collate_fn=collate_windows, num_workers=config.num_workers)
        model.train()
        loss_sum, n_steps = 0.0, 0
        for batch in loader:
            loss, _ = window_loss(model, batch, device, config.va_loss, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum, n_steps = loss_sum + loss.item(), n_steps + 1

        pred = _validate(model, val_eval, config, device, ctx)
        scores = frame_metrics(pred, n_classes)
        score = selection_score(scores, config.select_metric)
        score = -math.inf if not np.isfinite(score) else score
        row = {"epoch": epoch, "train_loss": ddp.reduce_mean(loss_sum, n_steps, ctx),
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
            log.info("epoch %d: train_loss %.4f val_score %.4f (best %.4f @ %d)", epoch, row["train_loss"],
                     score, state["best_score"], state["best_epoch"])
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
        ddp.barrier(ctx)  # no rank starts the next epoch (or returns) before rank 0 has written this one
    return SequenceRunResult(run_dir, state["best_epoch"], state["best_score"], state["history"])


def _write_epoch(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any],
                 config: SequenceTrainConfig, info: dict[str, Any], pred: dict[str, np.ndarray], val_ds: Any,
                 store: FeatureStore, frame_ckpt: str | None, improved: bool) -> None:
    """Rank 0's writes after an epoch, in the single-process loop's order and formats."""
    plain = ddp.unwrap(model)
    if improved:
        save_sequence_checkpoint(run_dir / BEST_NAME, plain, {**info, "epoch": state["epoch"],
                                                               "val_score": state["best_score"]},
                                 frame_checkpoint=frame_ckpt)
        write_sequence_predictions(run_dir / "val_predictions.npz", pred, val_ds.video_ids, store.expr_classes)
    write_text_atomic(run_dir / "history.csv", pd.DataFrame(state["history"]).to_csv(index=False))
    with atomic_path(run_dir / LAST_NAME) as tmp:
        torch.save({"model": plain.state_dict(), "optimizer": optimizer.state_dict(), "state": state,
                    "config": config_to_dict(config)}, tmp)
