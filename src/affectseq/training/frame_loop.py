"""The frame-training loop behind :func:`affectseq.training.frames.train_frames`."""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from affectseq.config import config_to_dict
from affectseq.errors import ConfigError
from affectseq.features.checkpoint import load_frame_model, save_frame_model
from affectseq.features.encoders import create_encoder
from affectseq.features.frame_model import FrameModel
from affectseq.training import distributed as ddp
from affectseq.training.augment import build_augment
from affectseq.training.checkpoints import load_resume_checkpoint, save_resume_checkpoint
from affectseq.training.frame_data import FrameData, FrameDataset, collate_batch, resolve_frame_data, tasks_in
from affectseq.training.scoring import (
    batch_loss, frame_metrics, make_eval_loader, predict_frames, selection_score, write_predictions,
)
from affectseq.training.frame_config import FrameTrainConfig, TrainState, lr_factor
from affectseq.utils.atomic import atomic_path, write_json_atomic
from affectseq.utils.progress import make_progress
from affectseq.utils.rundir import init_run_dir, predictions_file
from affectseq.utils.threads import torch_threads

log = logging.getLogger(__name__)
LAST = "checkpoint_last.pt"
BEST = "checkpoint_best.safetensors"


def _balanced_indices(frame_set: Any, indices: np.ndarray, config: FrameTrainConfig) -> np.ndarray:
    """Training indices after the configured sampler (downsample/oversample), seeded."""
    if config.balance not in ("downsample", "oversample"):
        return indices
    from affectseq.data import balance

    if config.task == "va":
        if config.balance != "downsample":
            raise ConfigError("VA balancing supports only downsample (the paper's method)")
        kept = balance.VADownsampler(random_state=config.seed).fit_resample(frame_set.va[indices])
    else:
        if frame_set.expr is None:
            raise ConfigError("EXPR balancing needs EXPR labels")
        keep_unannotated = config.task == "multi"
        sampler: Any
        if config.balance == "downsample":
            sampler = balance.ExprDownsampler(target=config.balance_target or "minority", random_state=config.seed,
                                              keep_unannotated=keep_unannotated)
        else:
            sampler = balance.ExprOversampler(target=config.balance_target or "majority", random_state=config.seed,
                                              keep_unannotated=keep_unannotated)
        kept = sampler.fit_resample(frame_set.expr[indices])
    return indices[kept]


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(history)


def epoch_sampling(seed: int, epoch: int, n_items: int) -> tuple[torch.Generator, np.ndarray]:
    """An epoch's global sample order and the generator its augmentations then draw from.

    Drawn exactly as the single-process loop's shuffled ``DataLoader`` draws them from
    ``Generator(seed * 1000 + epoch)`` -- one int64 (its worker base seed), then
    ``randperm(n_items)`` -- so DDP ranks, which shard this order batch by batch, train
    on the same global batches with the same augmentations as one process.
    """
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    order = torch.randperm(n_items, generator=generator).numpy()
    return generator, order


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)  # workers only decode/augment; the main process owns the cores' BLAS threads


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


class FrameTrainer:
    """Holds the data, model and optimiser of one run; :meth:`run` trains, selects and tests."""

    def __init__(self, data: str | Path, config: FrameTrainConfig, run_dir: Path, command: str | None = None):
        self.data_path = Path(data)
        self.config = config
        self.run_dir = run_dir
        self.command = command
        # Called with the state after each epoch's checkpoint is written (progress reporting, tests).
        self.after_epoch: Callable[[TrainState], None] | None = None

    # ------------------------------------------------------------------ setup
    def _build_model(self, data: FrameData, tasks: tuple[str, ...]) -> FrameModel:
        opts = self.config.encoder
        grayscale = opts.grayscale if opts.grayscale is not None else (
            opts.name == "paper_cnn" or data.grayscale_source)
        kwargs: dict[str, Any] = dict(input_size=opts.input_size, grayscale=grayscale, framing=data.framing,
                                      init_weights=opts.init_weights, pretrained_online=opts.pretrained_online)
        if opts.head_dropout is not None:
            kwargs["head_dropout"] = opts.head_dropout
        encoder = create_encoder(opts.name, **kwargs)
        train_set = data.train[0]
        return FrameModel(encoder, tasks, expr_classes=train_set.expr_classes or (), dropout=opts.head_dropout)

    def _optimizer(self, model: FrameModel) -> torch.optim.Optimizer:
        c = self.config
        # No weight decay on norms and biases (the usual practice for BN networks).
        decay = [p for n, p in model.named_parameters() if p.ndim > 1]
        no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": c.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if c.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, nesterov=True)
        return torch.optim.AdamW(groups, lr=c.lr)

    # ------------------------------------------------------------------ run
    def run(self, resume: bool = False, ctx: ddp.DistContext | None = None) -> dict[str, Any]:
        """Train, select on validation, test the best model; returns the summary (on every rank).

        ``ctx`` runs this as one rank of a DDP job (every rank calls it alike; gloo on
        CPU, nccl with a GPU per rank): ``config.batch_size`` is the global batch, split over the ranks in the
        single-process order with the same augmentations; validation is sharded and
        gathered; stop decisions agree; only rank 0 reads the resume checkpoint,
        writes files, logs and calls :attr:`after_epoch`. BatchNorm is synchronised on
        GPUs and stays per rank on CPU (torch has no CPU SyncBatchNorm). ``config.device``
        picks the device (auto: CUDA when available); augmentation always runs on CPU
        so its random draws do not depend on the device. ``config.threads`` sets torch's
        thread count while training; the caller's count is restored on return.
        """
        with torch_threads(self.config.threads):
            return self._run(resume, ctx)

    def _run(self, resume: bool, ctx: ddp.DistContext | None) -> dict[str, Any]:
        c = self.config
        ctx = ctx or ddp.DistContext()
        if ctx.enabled and c.batch_size % ctx.world_size:
            raise ConfigError(f"batch_size={c.batch_size} (the global batch) must be divisible by the "
                              f"{ctx.world_size} ranks")
        device = ctx.device(c.device)
        # Kept on purpose: model initialisation draws from torch's global generator (nn.Module constructors
        # take no generator), so seeding it is what makes a run's initial weights reproducible. NumPy's
        # global state is left alone: every NumPy draw here takes a Generator seeded from c.seed.
        torch.manual_seed(c.seed)
        data = resolve_frame_data(
            self.data_path, c.task, train_split=c.train_split, val_split=c.val_split, test_split=c.test_split,
            val_fraction=c.val_fraction, seed=c.seed, limit_train=c.limit_train, limit_val=c.limit_val,
            limit_test=c.limit_test)
        train_set, train_idx = data.train
        tasks = tasks_in(train_set, c.task)
        plain = self._build_model(data, tasks)
        state = TrainState()
        last = self.run_dir / LAST
        # Rank 0 reads the checkpoint and hands it over: other nodes need not mount the run directory.
        saved = ddp.broadcast_object(load_resume_checkpoint(last)  # weights_only: a file never runs code
                                     if ctx.is_main and resume and last.exists() else None, ctx)
        if saved is not None:
            plain.load_state_dict(saved["model"])
        elif c.init_from:  # a fresh run only: a resumed one must not depend on the donor model still existing
            from affectseq.training.warm_start import warm_start

            log.info(warm_start(plain, c.init_from))
        model = ddp.prepare_model(plain, ctx, device, sync_batchnorm=True)
        optimizer = self._optimizer(model)
        if saved is not None:
            optimizer.load_state_dict(saved["optimizer"])
            state = TrainState(**saved["state"])
            state.stop_reason = None  # a resumed run may continue with a larger epochs/max_minutes
            log.info("resuming after epoch %d (%.1f min used)", state.epoch, state.elapsed_sec / 60)
        elif ctx.is_main:
            init_run_dir(self.run_dir, c, c.seed, command=self.command)
        for note in data.notes if ctx.is_main else ():
            log.info(note)
        fit_idx = _balanced_indices(train_set, train_idx, c)
        class_weights = None
        if c.balance == "class_weight" and "expr" in tasks:
            from affectseq.data import balance

            class_weights = torch.from_numpy(balance.class_weights(train_set.expr[fit_idx],
                                                                   len(model.expr_classes))).to(device)
        if ctx.is_main:
            self._write_data_summary(data, fit_idx, tasks)
        train_ds = FrameDataset(train_set, fit_idx, model.spec, soft_targets=c.expr_targets == "votes")
        augment = build_augment(c.augment, model.spec)
        val_set, val_idx = data.val
        if ctx.enabled and (len(train_ds) < c.batch_size or len(val_idx) < ctx.world_size):
            raise ConfigError(f"DDP needs at least one global batch ({c.batch_size}) of training frames "
                              f"({len(train_ds)}) and a validation frame per rank")
        # Each rank predicts its contiguous block of the validation frames; the blocks are gathered in order.
        val_loader = make_eval_loader(val_set, val_idx[ddp.shard_contiguous(len(val_idx), ctx)], model,
                                      c.eval_batch_size)
        steps_per_epoch = math.ceil(len(train_ds) / c.batch_size)
        total_steps = steps_per_epoch * c.epochs
        warmup = min(0.5, c.warmup_epochs / c.epochs)
        budget_sec = c.max_minutes * 60 if c.max_minutes else None
        session_start = time.monotonic() - state.elapsed_sec

        def clock() -> float:
            # Time-based decisions (budget stop, time-clocked lr) must be the same on every rank: their mean.
            now = time.monotonic() - session_start
            return ddp.reduce_mean(now, 1, ctx) if ctx.enabled and budget_sec else now

        if ctx.is_main:
            log.info("training %s on %d frames (%s), validating on %d; tasks %s; %d steps/epoch%s",
                     model.spec.name, len(train_ds), train_set.name, len(val_idx), ",".join(tasks), steps_per_epoch,
                     f" over {ctx.world_size} ranks" if ctx.enabled else "")

        while state.epoch < c.epochs and state.stop_reason is None:
            if budget_sec and stop_before_epoch(clock(), state.epoch, budget_sec, c.schedule_clock):
                state.stop_reason = f"time budget of {c.max_minutes} min"
                break
            epoch_start = time.monotonic()
            generator, loader = self._epoch_loader(train_ds, state.epoch, ctx)
            # Dropout of this epoch, reproducible on resume; ranks other than 0 draw their own masks.
            torch.manual_seed(c.seed * 1000 + state.epoch + 7919 * ctx.rank)
            model.train()
            losses: list[float] = []
            lr = c.lr
            with make_progress(disable=None if ctx.is_main else True) as progress:
                bar = progress.add_task(f"epoch {state.epoch + 1}/{c.epochs}", total=len(loader))
                for x, expr, va, au in loader:
                    if augment is not None:
                        rows = (ctx.rank * len(x), ctx.world_size * len(x)) if ctx.enabled else None
                        x = augment(x, generator=generator, rows=rows)  # on CPU: same draws on any device
                    expr, va, au = (t.to(device, non_blocking=True) for t in (expr, va, au))
                    # NHWC input lets oneDNN pick its faster convolutions: 1.6x training speed on CPU for
                    # MobileNetV2 at 80 px (benchmarks/memory_format.py); weights stay contiguous.
                    x = x.to(device, non_blocking=True, memory_format=torch.channels_last)
                    now = clock()
                    frac = state.step / total_steps
                    if c.schedule_clock == "time" and budget_sec:
                        frac = max(frac, now / budget_sec)
                    lr = c.lr * lr_factor(min(frac, 1.0), c, warmup)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    loss = batch_loss(model(x), expr, va, au, class_weights, c.label_smoothing, c.va_loss)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    state.step += 1
                    losses.append(float(loss.detach()))
                    progress.update(bar, advance=1, description=f"epoch {state.epoch + 1} loss {np.mean(losses[-50:]):.3f}")
                    if budget_sec and now > budget_sec:
                        state.stop_reason = f"time budget of {c.max_minutes} min (mid-epoch)"
                        break
            train_sec = time.monotonic() - epoch_start
            pred = predict_frames(ddp.unwrap(model), val_loader, tta_flip=c.tta_flip, va_loss=c.va_loss)
            pred = ddp.gather_predictions(pred, len(val_loader), ctx)
            # The gathered predictions are the same on every rank, so are the score and early stopping.
            scores = frame_metrics(pred, len(model.expr_classes))
            score = selection_score(scores, c.select_metric)
            state.epoch += 1
            row = {"epoch": state.epoch, "train_loss": ddp.reduce_mean(float(np.sum(losses)), len(losses), ctx),
                   "val_loss": float(pred["loss"]), **scores, "lr": lr,
                   "train_images_per_sec": len(losses) * c.batch_size / max(train_sec, 1e-9),
                   "seconds": time.monotonic() - epoch_start}
            state.history.append(row)
            improved = score > state.best_score
            if improved:
                state.best_score, state.best_epoch, state.epochs_since_best = score, state.epoch, 0
            else:
                state.epochs_since_best += 1
                if c.early_stopping_patience and state.epochs_since_best >= c.early_stopping_patience:
                    state.stop_reason = f"early stopping: no improvement for {state.epochs_since_best} epochs"
            state.elapsed_sec = time.monotonic() - session_start
            if ctx.is_main:
                self._write_epoch(data, ddp.unwrap(model), optimizer, state, pred, improved, scores)
                log.info("epoch %d: train_loss %.4f val_loss %.4f %s%s (%.0f s, %.0f img/s)", state.epoch,
                         row["train_loss"], row["val_loss"],
                         " ".join(f"{k} {v:.4f}" for k, v in scores.items()), " *best*" if improved else "",
                         row["seconds"], row["train_images_per_sec"])
                if self.after_epoch is not None:
                    self.after_epoch(state)
            ddp.barrier(ctx)  # no rank starts the next epoch (or returns) before rank 0 has written this one
        if state.stop_reason is None:
            state.stop_reason = f"completed {c.epochs} epochs"
        summary = self._finish(data, state) if ctx.is_main else None
        return ddp.broadcast_object(summary, ctx)

    def _epoch_loader(self, train_ds: FrameDataset, epoch: int,
                      ctx: ddp.DistContext) -> tuple[torch.Generator, torch.utils.data.DataLoader]:
        """This rank's loader of an epoch and the generator the epoch's augmentations draw from."""
        c = self.config
        common: dict[str, Any] = dict(num_workers=c.num_workers, worker_init_fn=_worker_init, collate_fn=collate_batch)
        if not ctx.enabled:
            generator = torch.Generator().manual_seed(c.seed * 1000 + epoch)
            return generator, torch.utils.data.DataLoader(
                train_ds, batch_size=c.batch_size, shuffle=True, drop_last=len(train_ds) > c.batch_size,
                generator=generator, **common)
        generator, order = epoch_sampling(c.seed, epoch, len(train_ds))
        sampler = ddp.FixedOrderSampler(lambda _epoch: order, c.batch_size // ctx.world_size, ctx)
        # The order is already drawn; this loader's own generator only seeds its workers, which draw nothing.
        return generator, torch.utils.data.DataLoader(
            train_ds, batch_size=sampler.batch_size, sampler=sampler, generator=torch.Generator().manual_seed(c.seed),
            **common)

    # ------------------------------------------------------------------ outputs
    def _meta(self, data: FrameData, state: TrainState, scores: dict[str, float]) -> dict[str, Any]:
        return {"dataset": str(self.data_path), "train_set": data.train[0].name, "n_train": len(data.train[1]),
                "val_set": data.val[0].name, "epoch": state.epoch, "val_metrics": scores,
                "config": config_to_dict(self.config), "command": self.command}

    def _write_epoch(self, data: FrameData, model: FrameModel, optimizer: torch.optim.Optimizer, state: TrainState,
                     pred: dict[str, np.ndarray], improved: bool, scores: dict[str, float]) -> None:
        """An epoch's files: best model and its validation predictions when improved, history, resume state."""
        if improved:
            save_frame_model(self.run_dir / BEST, model, self._meta(data, state, scores))
            val_set, val_idx = data.val
            write_predictions(self.run_dir / predictions_file("validation"), val_set, val_idx, pred,
                              model.expr_classes)
        _write_history(self.run_dir / "history.csv", state.history)
        save_resume_checkpoint(self.run_dir / LAST, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                                     "state": asdict(state)})

    def _write_data_summary(self, data: FrameData, fit_idx: np.ndarray, tasks: tuple[str, ...]) -> None:
        from affectseq.data.balance import describe_distribution

        train_set, train_idx = data.train
        names = train_set.expr_classes or None
        summary = {}
        for label, idx in (("before_balancing", train_idx), ("after_balancing", fit_idx)):
            summary[label] = describe_distribution(
                expr=train_set.expr[idx] if "expr" in tasks else None,
                va=train_set.va[idx] if "va" in tasks else None, class_names=names)
        write_json_atomic(self.run_dir / "train_distribution.json", summary)

    def _finish(self, data: FrameData, state: TrainState) -> dict[str, Any]:
        c = self.config
        summary: dict[str, Any] = {"epochs_completed": state.epoch, "best_epoch": state.best_epoch,
                                   "stop_reason": state.stop_reason, "minutes": state.elapsed_sec / 60,
                                   "val_metrics": state.history[state.best_epoch - 1] if state.best_epoch else None}
        best_path = self.run_dir / BEST
        if data.test is not None and best_path.exists():
            best = load_frame_model(best_path, device=ddp.DistContext().device(c.device))  # rank 0 only
            test_set, test_idx = data.test
            loader = make_eval_loader(test_set, test_idx, best, c.eval_batch_size)
            pred = predict_frames(best, loader, tta_flip=c.tta_flip, va_loss=c.va_loss)
            scores = frame_metrics(pred, len(best.expr_classes))
            write_predictions(self.run_dir / predictions_file("test"), test_set, test_idx, pred, best.expr_classes)
            summary["test_set"] = test_set.name
            summary["test_metrics"] = scores
            write_json_atomic(self.run_dir / "test_metrics.json", {"test_set": test_set.name, "n": len(test_idx),
                                                                     **scores})
            log.info("test (%s, %d frames): %s", test_set.name, len(test_idx),
                     " ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        write_json_atomic(self.run_dir / "train_summary.json", summary)
        log.info("done: %s; best epoch %d; outputs in %s", state.stop_reason, state.best_epoch, self.run_dir)
        return summary


