"""Stage-2 training: a temporal model on windows of stored frame features (``affectseq train sequence``).

The temporal model is any registered architecture (:mod:`affectseq.models.registry`: ``gru``
(default, the paper's GRU 100-100-50), ``lstm``, ``tcn``, ``transformer``, or one registered from
outside), chosen with ``model.arch=NAME`` and configured with its own arguments beside it
(``model.arch=tcn model.kernel_size=5``); ``model.cell=lstm`` still means ``model.arch=lstm``.

Trained by the one training engine (:func:`affectseq.training.fit.fit`) with
:class:`SequenceTask`; the engine owns the run directory: ``config.yaml`` + ``run.json``,
``history.csv`` (one row per epoch), ``checkpoint_last.pt`` (everything needed to
resume), ``checkpoint_best.safetensors`` (a sequence bundle, see
:mod:`affectseq.training.checkpoints`) and ``val_predictions.npz`` written with the best
model, ``train_summary.json``.

Reproducibility: the model is initialised from ``seed``, and every epoch reseeds
its window order and dropout from ``(seed, epoch)``, so an interrupted run resumed
with ``resume=True`` ends with the same weights as an uninterrupted one (on CPU).

The same loop runs one rank of a DDP job when given a ``ctx``
(``affectseq scale train-sequence``, :mod:`affectseq.scale.ddp_sequence`): with a
plain batch-mean loss, ``W`` ranks take the same steps as one process.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import numpy as np
import torch

from affectseq.errors import ConfigError, InputError
from affectseq.features.store import FeatureStore
from affectseq.models.registry import arch_args
from affectseq.models.temporal import TemporalConfig, TemporalModel
from affectseq.sequences.clips import ClipDataset
from affectseq.sequences.dataset import WindowDataset, balanced_window_indices, collate_windows
from affectseq.training import distributed as ddp
from affectseq.modelfile.sequence import BEST_NAME
from affectseq.models.factory import save_sequence_checkpoint
from affectseq.training.fit import FitSettings, TrainResult, TrainState, epoch_callback, epoch_seed, fit
from affectseq.training.scoring import frame_metrics
from affectseq.training.sequence_data import make_sample_datasets, make_test_dataset, test_split_ids
from affectseq.utils.rundir import predictions_file
from affectseq.training.sequence_eval import predict_windows, window_loss, write_sequence_predictions

log = logging.getLogger(__name__)


@dataclass(frozen=True, init=False)
class SequenceModelConfig:
    """The temporal network: a registered architecture and its own arguments (default: the paper's GRU 100-100-50).

    YAML and overrides give the arguments flat beside ``arch`` (``model.arch=tcn model.channels=[32,32]``);
    ``config.yaml`` records them complete under ``args``. ``cell`` is the older name of ``arch``
    (``gru``/``lstm``). The architecture and its arguments are checked here, when the config is
    built: an unknown name is a ``ConfigError`` listing the registered ones.
    """

    arch: str = "gru"
    args: Mapping[str, Any] = field(default_factory=dict)
    mask_channel: bool = True

    def __init__(self, arch: str | None = None, args: Mapping[str, Any] | None = None, mask_channel: bool = True,
                 cell: str | None = None, **flat_args: Any):
        if cell is not None and arch is not None and cell != arch:
            raise ConfigError(f"model.cell={cell!r} and model.arch={arch!r} disagree (cell is the older name of arch)")
        name = arch or cell or "gru"
        if not isinstance(mask_channel, bool):
            raise ConfigError(f"option model.mask_channel must be true or false, got {mask_channel!r}")
        object.__setattr__(self, "arch", name)
        object.__setattr__(self, "args", arch_args(name, {**dict(args or {}), **flat_args}))
        object.__setattr__(self, "mask_channel", mask_channel)

    @classmethod
    def from_config(cls, values: Mapping[str, Any], prefix: str = "model.") -> "SequenceModelConfig":
        """Built by :func:`affectseq.config.load_config` from the ``model`` mapping (flat arguments allowed)."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"option {prefix.rstrip('.')} must be a mapping")
        values = dict(values)
        if values.get("cell") is not None and "arch" not in values:
            log.warning("option %scell is the older name of %sarch", prefix, prefix)
        args = values.pop("args", None)
        if args is not None and not isinstance(args, Mapping):
            raise ConfigError(f"option {prefix}args must be a mapping")
        return cls(**{k: values.pop(k) for k in ("arch", "mask_channel", "cell") if k in values},
                   args=args, **values)

    def temporal(self, mode: str) -> TemporalConfig:
        """The :class:`TemporalConfig` of this network in ``mode``."""
        return TemporalConfig(arch=self.arch, args=self.args, mode=mode, mask_channel=self.mask_channel)


@dataclass(frozen=True)
class SequenceTrainConfig:
    """Everything a sequence run depends on (saved as ``config.yaml``; override with ``key=value``)."""

    task: Literal["expr", "va", "multi"] = "expr"
    # auto: clip on a clip store (one label per clip), else seq2one (the paper); see training.sequence_data
    mode: Literal["auto", "seq2one", "seq2seq", "clip"] = "auto"
    window: int = 100  # frames per window (the paper: 100)
    stride: int | None = None  # anchor step of training windows; None: 1 (seq2one) / window (seq2seq)
    # seq2one: also train/predict frames t < window from left-padded windows; None (auto): only when a
    # split would otherwise have no window (videos shorter than the window), and say so
    pad_start: bool | None = None
    clip_frames: int = 16  # clip mode: frames sampled uniformly over each clip (the DFER convention)
    model: SequenceModelConfig = field(default_factory=SequenceModelConfig)
    epochs: int = 30
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 5  # epochs without a better validation score before stopping; 0: never
    select_metric: str = "auto"  # a validation metric (history.csv name, val_ optional), or auto: mean ABAW score
    max_minutes: float | None = None  # wall-clock budget over all resumes (stops before an epoch would overrun)
    va_loss: Literal["ccc", "mse"] = "ccc"
    # As frame training's: downsample/oversample seq2one windows by their target (EXPR class; VA: the paper's
    # 2-D histogram, downsample only), or class_weight: the EXPR loss weighted by inverse class frequency.
    # Older names: expr_downsample/va_downsample -> downsample, expr_oversample -> oversample, and
    # class_weighted: true -> class_weight (read with a deprecation warning).
    balance: Literal["none", "downsample", "oversample", "class_weight",
                     "expr_downsample", "expr_oversample", "va_downsample"] = "none"
    class_weighted: bool = False  # deprecated: balance=class_weight
    max_windows_per_epoch: int | None = None  # a fresh random subset each epoch (Aff-Wild2 has ~3M windows)
    max_val_windows: int | None = None  # a fixed evenly spaced subset for validation
    train_split: str = "train"
    val_split: str = "validation"
    val_fraction: float = 0.1  # a store without val_split: this share of the training videos validates (seeded)
    test_split: str | None = "auto"  # scored with the best model after training (auto: "test" if the store has it)
    num_workers: int = 0
    device: str = "auto"  # auto: this rank's CUDA GPU when there is one, else CPU
    threads: int | None = None  # torch threads while training (the caller's count is restored)
    seed: int = 0
    # Train on a store whose extraction is unfinished (fewer videos than planned): warn instead of refusing.
    allow_incomplete_store: bool = False

    def __post_init__(self) -> None:
        if self.window < 1 or self.epochs < 1 or self.batch_size < 1 or self.clip_frames < 1:
            raise ValueError("window, clip_frames, epochs and batch_size must be >= 1")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        balance = self.balance
        if balance in _OLD_BALANCE_NAMES:
            balance = _OLD_BALANCE_NAMES[balance]
            log.warning("balance=%s is deprecated; it is now balance=%s (frame training's name)", self.balance,
                        balance)
        if self.class_weighted:
            if balance not in ("none", "class_weight"):
                raise ValueError(f"class_weighted (deprecated: balance=class_weight) and balance={balance} "
                                 "cannot both be set")
            log.warning("class_weighted=true is deprecated; it is now balance=class_weight")
            balance = "class_weight"
        object.__setattr__(self, "balance", balance)
        object.__setattr__(self, "class_weighted", False)


_OLD_BALANCE_NAMES = {"expr_downsample": "downsample", "expr_oversample": "oversample", "va_downsample": "downsample"}
SequenceRunResult = TrainResult  # the name before both trainings returned one type


def resolve_tasks(store: FeatureStore, task: str) -> tuple[str, ...]:
    """The tasks trained: ``expr``/``va`` alone, or ``multi`` = every task the store has labels for."""
    tasks = tuple(t for t in ("expr", "va", "au") if t in store.tasks) if task == "multi" else (task,)
    missing = [t for t in tasks if t not in store.tasks]
    if missing or not tasks:
        raise InputError(store.root / "manifest.json", f"store has no {'/'.join(missing or [task])} labels "
                         f"(tasks: {', '.join(store.tasks) or 'none'})")
    return tasks


def build_model(config: SequenceTrainConfig, input_dim: int, tasks: tuple[str, ...], n_classes: int,
                mode: str | None = None) -> TemporalModel:
    """The temporal model of ``config`` with one head per task (``mode``: the resolved sample mode)."""
    sizes = {"expr": n_classes, "va": 2, "au": 13}
    # A clip sample: one output per sequence, read at its last step that holds a frame (TemporalModel "clip").
    return TemporalModel(input_dim, {t: sizes[t] for t in tasks}, config.model.temporal(mode or config.mode))


def make_datasets(store: FeatureStore, config: SequenceTrainConfig, tasks: tuple[str, ...]):
    """(train, validation) datasets: windows, or one sample per clip (see :mod:`affectseq.training.sequence_data`).

    Validation seq2seq windows never overlap (each frame once).
    """
    train, val, _ = make_sample_datasets(store, config, tasks)
    return train, val


def _expr_class_weights(store: FeatureStore, dataset: Any, n_classes: int) -> torch.Tensor:
    from affectseq.data.balance import class_weights

    if isinstance(dataset, ClipDataset):  # one label per clip, whatever the clip's length
        labels = dataset.target_labels("expr")
    else:
        labels = np.concatenate([np.asarray(store.labels(v)["expr"]) for v in dataset.video_ids])
    return torch.from_numpy(class_weights(labels, n_classes))


def epoch_order(pool: np.ndarray, config: SequenceTrainConfig, epoch: int) -> np.ndarray:
    """The global window order of ``epoch``: a permutation of ``pool`` seeded by ``(seed, epoch)``."""
    rng = np.random.default_rng([config.seed, epoch])
    order = rng.permutation(pool)
    if config.max_windows_per_epoch is not None:
        order = order[: config.max_windows_per_epoch]
    return order


def _validation_windows(val_ds: WindowDataset, config: SequenceTrainConfig) -> Any:
    """The validation windows scored each epoch: all, or a fixed evenly spaced ``max_val_windows`` subset."""
    if config.max_val_windows is not None and len(val_ds) > config.max_val_windows:
        keep = np.linspace(0, len(val_ds) - 1, config.max_val_windows).round().astype(np.int64)
        return torch.utils.data.Subset(val_ds, keep.tolist())  # rows still index val_ds.video_ids
    return val_ds


def _training_pool(train_ds: WindowDataset, config: SequenceTrainConfig, tasks: tuple[str, ...]) -> np.ndarray:
    """The training windows an epoch's order is drawn from: all, or a balanced seeded selection (seq2one)."""
    if config.balance in ("none", "class_weight"):
        return np.arange(len(train_ds))
    if isinstance(train_ds, WindowDataset) and train_ds.spec.mode != "seq2one":
        raise ConfigError(f"balance={config.balance} balances seq2one windows or clips by their target; "
                          "seq2seq windows have no single target (use balance=class_weight)")
    task = tasks[0]
    if task == "va" and config.balance != "downsample":
        raise ConfigError("VA balancing supports only downsample (the paper's method)")
    method = f"{task}_{config.balance}"
    try:
        return balanced_window_indices(train_ds, task, method, random_state=config.seed)
    except ValueError as err:
        raise ConfigError(f"balance={config.balance}: {err}") from None


class SequenceTask:
    """Training a :class:`TemporalModel` on windows of a feature store, as a :class:`~affectseq.training.fit.FitTask`.

    Batches: ``batch_size`` windows of the seeded epoch order (:func:`epoch_order`); under
    DDP rank ``r`` takes the ``r``-th block of each global batch. Validation: every
    (or ``max_val_windows``) validation window, sharded over ranks and gathered.
    """

    items_name = "windows"
    sync_batchnorm = False

    def __init__(self, store_path: str | Path, run_dir: Path, config: SequenceTrainConfig):
        self.store_path, self.run_dir, self.config = store_path, run_dir, config
        c = config
        self.settings = FitSettings(epochs=c.epochs, seed=c.seed, batch_size=c.batch_size, patience=c.patience,
                                    select_metric=c.select_metric, max_minutes=c.max_minutes, device=c.device,
                                    threads=c.threads)

    def prepare(self, ctx: ddp.DistContext) -> None:
        c = self.config
        self.store = store = FeatureStore(self.store_path)
        self.tasks = resolve_tasks(store, c.task)
        self.n_classes = len(store.expr_classes) or 7
        self.train_ds, self.val_ds, self.plan = make_sample_datasets(store, c, self.tasks)
        if self.plan.mode == "clip":
            self.items_name = "clips"
            if c.select_metric == "auto" and self.tasks == ("expr",):
                # Clip benchmarks rank by UAR (mean per-class recall): select the model on it.
                self.settings = dataclasses.replace(self.settings, select_metric="expr_uar")
        self.pool = _training_pool(self.train_ds, c, self.tasks)
        self.val_eval = _validation_windows(self.val_ds, c)

    def build_model(self) -> TemporalModel:
        return build_model(self.config, self.store.feature_dim, self.tasks, self.n_classes, self.plan.mode)

    def init_fresh(self, model: torch.nn.Module) -> None:
        """Nothing to add: a temporal model starts from its seeded initialisation."""

    def make_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)

    def setup(self, model: torch.nn.Module, device: torch.device, ctx: ddp.DistContext, run_dir: Path) -> int:
        c, store = self.config, self.store
        self.device = device
        self.class_weights = (_expr_class_weights(store, self.train_ds, self.n_classes).to(device)
                              if c.balance == "class_weight" and "expr" in self.tasks else None)
        self.frame_ckpt = store.frame_model_file()  # the store's own copy: the frame run folder may be gone
        self.info = {"mode": self.plan.mode, "window": self.plan.length, "tasks": list(self.tasks),
                     "expr_classes": list(store.expr_classes) if "expr" in self.tasks else [],
                     "encoder": store.encoder, "store_checkpoint_sha256": store.checkpoint_sha256,
                     "fps": store.fps(self.train_ds.video_ids),
                     "meta": {"store": str(store.root), "run_dir": str(run_dir), "samples": self.plan.to_dict(),
                              **({"world_size": ctx.world_size} if ctx.enabled else {})}}
        # Global step i covers order[i*B:(i+1)*B] whatever the number of ranks (rank r takes the r-th block).
        self.sampler = ddp.FixedOrderSampler(lambda e: epoch_order(self.pool, c, e), c.batch_size // ctx.world_size,
                                             ctx)
        self.sampler.set_epoch(1)
        return -(-len(self.sampler) // self.sampler.batch_size)

    def learning_rate(self, progress: float) -> float:
        return self.config.lr  # constant: Adam at the configured rate, as the paper trains its GRU

    def batches(self, epoch: int, ctx: ddp.DistContext) -> torch.utils.data.DataLoader:
        self.sampler.set_epoch(epoch)
        # Dropout of this epoch, reproducible on resume; ranks other than 0 draw their own masks.
        torch.manual_seed(epoch_seed(self.config.seed, epoch, ctx.rank))
        return torch.utils.data.DataLoader(self.train_ds, batch_size=self.sampler.batch_size, sampler=self.sampler,
                                           collate_fn=collate_windows, num_workers=self.config.num_workers)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return window_loss(model, batch, self.device, self.config.va_loss, self.class_weights)[0]

    def validate(self, model: torch.nn.Module, ctx: ddp.DistContext) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        c, val_eval = self.config, self.val_eval
        if not ctx.enabled:
            pred = predict_windows(model, val_eval, c.eval_batch_size, self.device, c.va_loss, c.num_workers)
        else:  # each rank predicts its contiguous block; all are gathered
            block = ddp.shard_contiguous(len(val_eval), ctx)
            part = torch.utils.data.Subset(val_eval, block.tolist())
            pred = predict_windows(ddp.unwrap(model), part, c.eval_batch_size, self.device, c.va_loss,
                                   c.num_workers)
            pred = ddp.gather_predictions(pred, -(-len(block) // c.eval_batch_size), ctx)
        return frame_metrics(pred, self.n_classes), pred  # clips: one row per clip, so expr_uar is UAR

    def save_best(self, run_dir: Path, model: torch.nn.Module, state: TrainState, metrics: dict[str, float],
                  pred: dict[str, np.ndarray]) -> None:
        save_sequence_checkpoint(run_dir / BEST_NAME, model, {**self.info, "epoch": state.epoch,
                                                              "val_score": state.best_score},
                                 frame_checkpoint=self.frame_ckpt)
        write_sequence_predictions(run_dir / "val_predictions.npz", pred, self.val_ds.video_ids,
                                   self.store.expr_classes, label_level="clip" if self.plan.mode == "clip" else "frame")

    def finish(self, run_dir: Path, state: TrainState) -> dict[str, Any]:
        """Score the best model on the test split when there is one (``test_predictions.npz``, ``test_metrics``)."""
        summary: dict[str, Any] = {"samples": self.plan.to_dict()}
        split, ids = test_split_ids(self.store, self.config, self.tasks)
        if split is None or not (run_dir / BEST_NAME).exists():
            return summary
        from affectseq.models.bundle import load_sequence_checkpoint

        best, _ = load_sequence_checkpoint(run_dir / BEST_NAME, device=str(self.device))
        test = make_test_dataset(self.store, self.config, self.tasks, self.plan, split, ids)
        if not len(test):
            return summary
        c = self.config
        pred = predict_windows(best, test, c.eval_batch_size, self.device, c.va_loss, c.num_workers)
        write_sequence_predictions(run_dir / predictions_file("test"), pred, test.video_ids, self.store.expr_classes,
                                   label_level="clip" if self.plan.mode == "clip" else "frame")
        scores = frame_metrics(pred, self.n_classes)
        log.info("test (%s, %d %s): %s", split, len(test), self.items_name,
                 " ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        return {**summary, "test_split": split, "test_metrics": scores}


def train_sequence(
    store_path: str | Path,
    run_dir: str | Path,
    config: SequenceTrainConfig = SequenceTrainConfig(),
    *,
    resume: bool = False,
    progress: bool | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    command: str | None = None,
    ctx: ddp.DistContext | None = None,
    allow_config_change: bool = False,
) -> TrainResult:
    """Train a temporal model on a feature store; see the module docstring for the run directory.

    The training surface both tasks share (:func:`affectseq.training.frames.train_frames` alike):
    ``(data, run_dir, config, *, resume, progress, on_epoch_end, command, ctx, allow_config_change)``
    -> :class:`~affectseq.training.fit.TrainResult`. A thin wrapper: :func:`affectseq.training.fit.fit`
    of a :class:`SequenceTask`. ``ctx`` runs this as one rank of a DDP job (every rank calls it alike;
    ``config.batch_size`` is the global batch); ``None``: one process. ``resume`` continues the run in
    ``run_dir`` (refused if its configuration changed, beyond more epochs or time, unless
    ``allow_config_change``). ``on_epoch_end(epoch, history_row)`` runs on rank 0 after each epoch.
    """
    run_dir = Path(run_dir)
    result = fit(SequenceTask(store_path, run_dir, config), run_dir, ctx, resume=resume,
                 allow_config_change=allow_config_change, command=command, progress=progress,
                 on_epoch_end=epoch_callback(on_epoch_end))
    return TrainResult.of(result, run_dir)
