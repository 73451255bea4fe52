"""What a frame-training run is configured with: ``FrameTrainConfig`` (YAML + overrides) and its
learning-rate schedule.

Its own module so the frame task (:mod:`affectseq.training.frame_task`) and the entry point
(:mod:`affectseq.training.frames`, which re-exports these names) both import it without
importing each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from affectseq.training.augment import AugmentConfig


@dataclass(frozen=True)
class EncoderOptions:
    """Which encoder to train and how to initialise it (see ``affectseq.features.create_encoder``)."""

    name: str = "paper_cnn"
    input_size: int | None = None  # None: the encoder's default (96 paper_cnn, 112 others)
    grayscale: bool | None = None  # None: True for paper_cnn or all-gray data (FER2013)
    init_weights: str | None = None  # local state-dict file (e.g. ImageNet weights); never downloaded
    pretrained_online: bool = False  # let timm download weights (explicit opt-in)
    head_dropout: float | None = None  # None: the encoder's own (0.5 paper_cnn, 0.2 others)


@dataclass(frozen=True)
class FrameTrainConfig:
    """Every setting of a frame-training run (YAML + ``key=value`` overrides).

    The options both trainings have carry the same names and meanings as
    :class:`~affectseq.training.sequence.SequenceTrainConfig`'s (``patience``, ``balance``, ``select_metric``,
    ``max_minutes``, ``device``, ``threads``, ``seed``...). ``early_stopping_patience`` is the older name of
    ``patience`` (still read, with a deprecation warning).
    """

    RENAMED: ClassVar[dict[str, str]] = {"early_stopping_patience": "patience"}

    task: Literal["expr", "va", "multi"] = "expr"
    encoder: EncoderOptions = field(default_factory=EncoderOptions)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    epochs: int = 30
    batch_size: int = 64
    eval_batch_size: int = 256
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    scheduler: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    schedule_clock: Literal["steps", "time"] = "steps"
    label_smoothing: float = 0.0
    # EXPR targets: "majority" (one class per frame) or "votes" (cross-entropy to the dataset's label
    # distribution, e.g. FER+'s 10 crowd votes; selection and reports still use the majority label).
    expr_targets: Literal["majority", "votes"] = "majority"
    # Warm start: a frame model (.safetensors, run folder or "default") whose encoder weights, and the
    # EXPR-head rows of classes both models share, initialise this one (same encoder and input size).
    init_from: str | None = None
    va_loss: Literal["ccc", "mse"] = "ccc"
    # The one balancing vocabulary of both trainings: downsample/oversample the training frames by their EXPR
    # class (VA: the paper's 2-D histogram downsampling), or weight the EXPR loss by inverse class frequency.
    balance: Literal["none", "downsample", "oversample", "class_weight"] = "none"
    balance_target: int | None = None  # per-class cap (downsample) / goal (oversample); None: minority / majority
    # Logit-adjusted EXPR loss (Menon et al. 2021): tau * log(training class prior) added to the logits in the
    # loss only, so the trained model's plain argmax is balanced; 0 disables.
    logit_adjust_tau: float = 0.0
    select_metric: str = "auto"  # a validation metric (history.csv name, val_ optional), or auto: mean ABAW score
    patience: int = 5  # epochs without a better selection score before stopping; 0: never
    max_minutes: float | None = None  # wall-time budget over all resumes
    train_split: str = "train"
    val_split: str | None = "auto"
    test_split: str | None = "auto"
    val_fraction: float = 0.1
    limit_train: int | None = None
    limit_val: int | None = None
    limit_test: int | None = None
    tta_flip: bool = False
    num_workers: int = 0  # DataLoader worker processes (>0 helps when decoding image files)
    threads: int | None = None
    device: str = "auto"  # auto: this rank's CUDA GPU when there is one, else CPU; or cpu, cuda, cuda:N
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if self.schedule_clock == "time" and not self.max_minutes:
            raise ValueError("schedule_clock: time needs max_minutes")


def lr_factor(progress: float, config: FrameTrainConfig, warmup_fraction: float) -> float:
    """Multiplier of ``config.lr`` at training progress in [0, 1]: linear warm-up then cosine."""
    if warmup_fraction > 0 and progress < warmup_fraction:
        return max(progress / warmup_fraction, 1e-3)
    if config.scheduler == "constant":
        return 1.0
    rest = (progress - warmup_fraction) / max(1e-9, 1.0 - warmup_fraction)
    rest = min(max(rest, 0.0), 1.0)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * rest))
