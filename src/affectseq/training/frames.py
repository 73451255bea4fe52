"""Frame-level training (stage 1): ``train_frames(data, run_dir, config)``.

EXPR, VA and multi-task training of a :class:`FrameModel` on any FrameSet, by the one
training engine (:func:`affectseq.training.fit.fit`, which owns the run-directory contract:
``config.yaml``/``run.json``, ``history.csv``, ``checkpoint_last.pt``,
``checkpoint_best.safetensors``, ``val_predictions.npz``, ``train_summary.json``) with the
frame task (:mod:`affectseq.training.frame_task`); with a test split also
``test_predictions.npz`` + ``test_metrics.json``.

Same seed and data give the same metrics on CPU (seeded shuffling, augmentation
and initialisation, step-clocked schedule). ``max_minutes`` bounds the wall time;
with ``schedule_clock: time`` the learning-rate schedule follows the elapsed
fraction of that budget, so a run on a busy machine still anneals fully.

Under DDP (``affectseq scale train-frames``, :mod:`affectseq.scale.ddp_frames`) the
same loop runs on every CPU rank (gloo) with ``batch_size`` as the global batch; with
a plain batch-mean loss and no BatchNorm it takes the same steps as one process
(torch's SyncBatchNorm needs GPUs: on CPU, BatchNorm statistics stay per rank).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from affectseq.training.fit import TrainResult, epoch_callback, fit
from affectseq.training.frame_config import EncoderOptions, FrameTrainConfig, lr_factor
from affectseq.training.frame_task import FrameTask

if TYPE_CHECKING:
    from affectseq.training.distributed import DistContext


def train_frames(data: str | Path, run_dir: str | Path | FrameTrainConfig,
                 config: FrameTrainConfig | str | Path = FrameTrainConfig(), *, resume: bool = False,
                 progress: bool | None = None, on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
                 command: str | None = None, ctx: DistContext | None = None,
                 allow_config_change: bool = False) -> TrainResult:
    """Train a frame model; the result's ``summary`` is also written to ``run_dir/train_summary.json``.

    The training surface both tasks share (:func:`affectseq.training.sequence.train_sequence` alike):
    ``(data, run_dir, config, *, resume, progress, on_epoch_end, command, ctx, allow_config_change)``
    -> :class:`~affectseq.training.fit.TrainResult`. The older order ``(data, config, run_dir)`` is still
    accepted (with a deprecation warning). A thin wrapper: :func:`affectseq.training.fit.fit` of a
    :class:`~affectseq.training.frame_task.FrameTask`. ``ctx``: run as one rank of a DDP job; ``None``:
    one process. ``resume`` continues the run in ``run_dir`` (refused if its configuration changed,
    beyond more epochs or time, unless ``allow_config_change``). ``on_epoch_end(epoch, history_row)``
    runs on rank 0 after each epoch.
    """
    if isinstance(run_dir, FrameTrainConfig):  # the order before both trainings shared one surface
        warnings.warn("train_frames(data, config, run_dir) is deprecated; call train_frames(data, run_dir, config)",
                      DeprecationWarning, stacklevel=2)
        run_dir, config = config, run_dir
    if not isinstance(config, FrameTrainConfig):
        raise TypeError(f"config must be a FrameTrainConfig, got {type(config).__name__}")
    result = fit(FrameTask(data, config, command), run_dir, ctx, resume=resume,
                 allow_config_change=allow_config_change, command=command, progress=progress,
                 on_epoch_end=epoch_callback(on_epoch_end))
    return TrainResult.of(result, run_dir)


__all__ = ["EncoderOptions", "FrameTrainConfig", "TrainResult", "lr_factor", "train_frames"]
