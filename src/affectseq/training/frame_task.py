"""Frame models as a :class:`~affectseq.training.fit.FitTask`: what :func:`~affectseq.training.frames.train_frames`
trains with the one engine (:func:`affectseq.training.fit.fit`).

Batches: the seeded shuffled order of the (optionally balanced) training frames, augmented
on CPU so the draws do not depend on the device; under DDP each rank takes its rows of
the same global batches with the same augmentations (:func:`epoch_sampling`). Validation:
each rank predicts a contiguous block of the validation frames, gathered in order. After
the last epoch the best model is tested on the test split, if there is one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from affectseq.config import config_to_dict
from affectseq.errors import ConfigError
from affectseq.models.factory import load_frame_model, save_frame_model
from affectseq.features.encoders import create_encoder
from affectseq.features.frame_model import FrameModel
from affectseq.training import distributed as ddp
from affectseq.training.augment import build_augment
from affectseq.training.fit import BEST, FitSettings, TrainState, epoch_seed
from affectseq.training.frame_config import FrameTrainConfig, lr_factor
from affectseq.training.frame_data import FrameData, FrameDataset, collate_batch, resolve_frame_data, tasks_in
from affectseq.training.scoring import batch_loss, frame_metrics, make_eval_loader, predict_frames, write_predictions
from affectseq.utils.atomic import write_json_atomic
from affectseq.utils.rundir import predictions_file

log = logging.getLogger(__name__)


def epoch_sampling(seed: int, epoch: int, n_items: int) -> tuple[torch.Generator, np.ndarray]:
    """An epoch's global sample order and the generator its augmentations then draw from.

    Drawn exactly as the single-process loop's shuffled ``DataLoader`` draws them from
    ``Generator(epoch_seed(seed, epoch + 1))`` (``epoch`` 0-based here) -- one int64 (its worker base seed), then
    ``randperm(n_items)`` -- so DDP ranks, which shard this order batch by batch, train
    on the same global batches with the same augmentations as one process.
    """
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch + 1))
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    order = torch.randperm(n_items, generator=generator).numpy()
    return generator, order


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)  # workers only decode/augment; the main process owns the cores' BLAS threads


def balanced_indices(frame_set: Any, indices: np.ndarray, config: FrameTrainConfig) -> np.ndarray:
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


class FrameTask:
    """Training a :class:`FrameModel` (encoder + task heads) on a FrameSet: see the module docstring."""

    items_name = "images"
    sync_batchnorm = True

    def __init__(self, data: str | Path, config: FrameTrainConfig, command: str | None = None):
        self.data_path = Path(data)
        self.config = config
        self.command = command
        c = config
        self.settings = FitSettings(epochs=c.epochs, seed=c.seed, batch_size=c.batch_size,
                                    patience=c.patience, select_metric=c.select_metric,
                                    max_minutes=c.max_minutes, schedule_clock=c.schedule_clock, device=c.device,
                                    threads=c.threads)

    # ------------------------------------------------------------------ model
    def prepare(self, ctx: ddp.DistContext) -> None:
        c = self.config
        self.data: FrameData = resolve_frame_data(
            self.data_path, c.task, train_split=c.train_split, val_split=c.val_split, test_split=c.test_split,
            val_fraction=c.val_fraction, seed=c.seed, limit_train=c.limit_train, limit_val=c.limit_val,
            limit_test=c.limit_test)
        self.tasks = tasks_in(self.data.train[0], c.task)

    def build_model(self) -> FrameModel:
        opts = self.config.encoder
        grayscale = opts.grayscale if opts.grayscale is not None else (
            opts.name == "paper_cnn" or self.data.grayscale_source)
        kwargs: dict[str, Any] = dict(input_size=opts.input_size, grayscale=grayscale, framing=self.data.framing,
                                      init_weights=opts.init_weights, pretrained_online=opts.pretrained_online)
        if opts.head_dropout is not None:
            kwargs["head_dropout"] = opts.head_dropout
        encoder = create_encoder(opts.name, **kwargs)
        train_set = self.data.train[0]
        return FrameModel(encoder, self.tasks, expr_classes=train_set.expr_classes or (), dropout=opts.head_dropout)

    def init_fresh(self, model: torch.nn.Module) -> None:
        if self.config.init_from:
            from affectseq.training.warm_start import warm_start

            log.info(warm_start(model, self.config.init_from))

    def make_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        c = self.config
        # No weight decay on norms and biases (the usual practice for BN networks).
        decay = [p for n, p in model.named_parameters() if p.ndim > 1]
        no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": c.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if c.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, nesterov=True)
        return torch.optim.AdamW(groups, lr=c.lr)

    # ------------------------------------------------------------------ data
    def setup(self, model: torch.nn.Module, device: torch.device, ctx: ddp.DistContext, run_dir: Path) -> int:
        c, data = self.config, self.data
        self.device, self.run_dir, self.ctx = device, run_dir, ctx
        self.expr_classes = tuple(ddp.unwrap(model).expr_classes)
        spec = ddp.unwrap(model).spec
        for note in data.notes if ctx.is_main else ():
            log.info(note)
        train_set, train_idx = data.train
        fit_idx = balanced_indices(train_set, train_idx, c)
        self.class_weights = None
        if c.balance == "class_weight" and "expr" in self.tasks:
            from affectseq.data import balance

            self.class_weights = torch.from_numpy(balance.class_weights(train_set.expr[fit_idx],
                                                                        len(self.expr_classes))).to(device)
        self.expr_logit_offset = None
        if c.logit_adjust_tau and "expr" in self.tasks:
            from affectseq.data import balance

            prior = balance.class_prior(train_set.expr[fit_idx], len(self.expr_classes))
            self.expr_logit_offset = (c.logit_adjust_tau * torch.from_numpy(np.log(prior))).float().to(device)
        if ctx.is_main:
            self._write_data_summary(run_dir, fit_idx)
        self.train_ds = FrameDataset(train_set, fit_idx, spec, soft_targets=c.expr_targets == "votes")
        self.augment = build_augment(c.augment, spec)
        val_set, val_idx = data.val
        if ctx.enabled and (len(self.train_ds) < c.batch_size or len(val_idx) < ctx.world_size):
            raise ConfigError(f"DDP needs at least one global batch ({c.batch_size}) of training frames "
                              f"({len(self.train_ds)}) and a validation frame per rank")
        # Each rank predicts its contiguous block of the validation frames; the blocks are gathered in order.
        self.val_loader = make_eval_loader(val_set, val_idx[ddp.shard_contiguous(len(val_idx), ctx)],
                                           ddp.unwrap(model), c.eval_batch_size)
        steps_per_epoch = -(-len(self.train_ds) // c.batch_size)
        self.warmup = min(0.5, c.warmup_epochs / c.epochs)
        if ctx.is_main:
            log.info("training %s on %d frames (%s), validating on %d; tasks %s; %d steps/epoch%s", spec.name,
                     len(self.train_ds), train_set.name, len(val_idx), ",".join(self.tasks), steps_per_epoch,
                     f" over {ctx.world_size} ranks" if ctx.enabled else "")
        return steps_per_epoch

    def learning_rate(self, progress: float) -> float:
        return self.config.lr * lr_factor(progress, self.config, self.warmup)

    def batches(self, epoch: int, ctx: ddp.DistContext) -> Iterator[tuple[torch.Tensor, ...]]:
        generator, loader = self._epoch_loader(epoch - 1, ctx)
        # Dropout of this epoch, reproducible on resume; ranks other than 0 draw their own masks.
        torch.manual_seed(epoch_seed(self.config.seed, epoch, ctx.rank))
        return self._prepared(loader, generator, ctx)

    def _prepared(self, loader: Any, generator: torch.Generator, ctx: ddp.DistContext
                  ) -> Iterator[tuple[torch.Tensor, ...]]:
        device = self.device
        for x, expr, va, au in loader:
            if self.augment is not None:
                rows = (ctx.rank * len(x), ctx.world_size * len(x)) if ctx.enabled else None
                x = self.augment(x, generator=generator, rows=rows)  # on CPU: same draws on any device
            expr, va, au = (t.to(device, non_blocking=True) for t in (expr, va, au))
            # NHWC input lets oneDNN pick its faster convolutions: 1.6x training speed on CPU for
            # MobileNetV2 at 80 px (benchmarks/memory_format.py); weights stay contiguous.
            yield x.to(device, non_blocking=True, memory_format=torch.channels_last), expr, va, au

    def _epoch_loader(self, epoch: int, ctx: ddp.DistContext) -> tuple[torch.Generator, torch.utils.data.DataLoader]:
        """This rank's loader of an epoch (0-based) and the generator the epoch's augmentations draw from."""
        c, train_ds = self.config, self.train_ds
        common: dict[str, Any] = dict(num_workers=c.num_workers, worker_init_fn=_worker_init, collate_fn=collate_batch)
        if not ctx.enabled:
            generator = torch.Generator().manual_seed(epoch_seed(c.seed, epoch + 1))
            return generator, torch.utils.data.DataLoader(
                train_ds, batch_size=c.batch_size, shuffle=True, drop_last=len(train_ds) > c.batch_size,
                generator=generator, **common)
        generator, order = epoch_sampling(c.seed, epoch, len(train_ds))
        sampler = ddp.FixedOrderSampler(lambda _epoch: order, c.batch_size // ctx.world_size, ctx)
        # The order is already drawn; this loader's own generator only seeds its workers, which draw nothing.
        return generator, torch.utils.data.DataLoader(
            train_ds, batch_size=sampler.batch_size, sampler=sampler, generator=torch.Generator().manual_seed(c.seed),
            **common)

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, expr, va, au = batch
        c = self.config
        return batch_loss(model(x), expr, va, au, self.class_weights, c.label_smoothing, c.va_loss,
                          self.expr_logit_offset)

    # ------------------------------------------------------------------ scores and files
    def validate(self, model: torch.nn.Module, ctx: ddp.DistContext) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        pred = predict_frames(ddp.unwrap(model), self.val_loader, tta_flip=self.config.tta_flip,
                              va_loss=self.config.va_loss)
        pred = ddp.gather_predictions(pred, len(self.val_loader), ctx)
        return frame_metrics(pred, len(self.expr_classes)), pred

    def save_best(self, run_dir: Path, model: torch.nn.Module, state: TrainState, metrics: dict[str, float],
                  pred: dict[str, np.ndarray]) -> None:
        data = self.data
        meta = {"dataset": str(self.data_path), "train_set": data.train[0].name, "n_train": len(data.train[1]),
                "val_set": data.val[0].name, "epoch": state.epoch, "val_metrics": metrics,
                "config": config_to_dict(self.config), "command": self.command}
        save_frame_model(run_dir / BEST, model, meta)
        val_set, val_idx = data.val
        write_predictions(run_dir / predictions_file("validation"), val_set, val_idx, pred, self.expr_classes)

    def finish(self, run_dir: Path, state: TrainState) -> dict[str, Any]:
        """Test the best model on the test split (when there is one): ``test_metrics.json``, test predictions."""
        c, best_path = self.config, run_dir / BEST
        if self.data.test is None or not best_path.exists():
            return {}
        best = load_frame_model(best_path, device=ddp.DistContext().device(c.device))  # rank 0 only
        test_set, test_idx = self.data.test
        loader = make_eval_loader(test_set, test_idx, best, c.eval_batch_size)
        pred = predict_frames(best, loader, tta_flip=c.tta_flip, va_loss=c.va_loss)
        scores = frame_metrics(pred, len(best.expr_classes))
        write_predictions(run_dir / predictions_file("test"), test_set, test_idx, pred, best.expr_classes)
        write_json_atomic(run_dir / "test_metrics.json", {"test_set": test_set.name, "n": len(test_idx), **scores})
        log.info("test (%s, %d frames): %s", test_set.name, len(test_idx),
                 " ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        return {"test_set": test_set.name, "test_metrics": scores}

    def _write_data_summary(self, run_dir: Path, fit_idx: np.ndarray) -> None:
        from affectseq.data.balance import describe_distribution

        train_set, train_idx = self.data.train
        names = train_set.expr_classes or None
        summary = {}
        for label, idx in (("before_balancing", train_idx), ("after_balancing", fit_idx)):
            summary[label] = describe_distribution(
                expr=train_set.expr[idx] if "expr" in self.tasks else None,
                va=train_set.va[idx] if "va" in self.tasks else None, class_names=names)
        write_json_atomic(run_dir / "train_distribution.json", summary)
