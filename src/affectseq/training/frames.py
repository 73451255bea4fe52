"""Frame-level training (stage 1): ``train_frames(data, config, run_dir)``.

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

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from affectseq.training.fit import TrainState, fit
from affectseq.training.frame_config import EncoderOptions, FrameTrainConfig, lr_factor
from affectseq.training.frame_task import FrameTask

if TYPE_CHECKING:
    from affectseq.training.distributed import DistContext


def train_frames(data: str | Path, config: FrameTrainConfig, run_dir: str | Path, resume: bool = False,
                 command: str | None = None, ctx: DistContext | None = None, allow_config_change: bool = False,
                 progress: bool | None = None,
                 on_epoch_end: Callable[[TrainState, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Train a frame model; returns the summary also written to ``run_dir/train_summary.json``.

    A thin wrapper: :func:`affectseq.training.fit.fit` of a :class:`~affectseq.training.frame_task.FrameTask`.
    ``ctx``: run as one rank of a DDP job; ``None``: one process. ``resume`` continues the run in
    ``run_dir`` (refused if its configuration changed, beyond more epochs or time, unless
    ``allow_config_change``). ``on_epoch_end(state, history_row)`` runs on rank 0 after each epoch.
    """
    result = fit(FrameTask(data, config, command), run_dir, ctx, resume=resume,
                 allow_config_change=allow_config_change, command=command, progress=progress,
                 on_epoch_end=on_epoch_end)
    return result.summary


__all__ = ["EncoderOptions", "FrameTrainConfig", "lr_factor", "train_frames"]
