"""Frame-level training (stage 1): ``train_frames(data, config, run_dir)``.

One loop for EXPR, VA and multi-task training of a :class:`FrameModel` on any
FrameSet, following the run-directory contract: ``config.yaml``/``run.json``,
``history.csv`` (one row per epoch), ``checkpoint_last.pt`` (resume),
``checkpoint_best.safetensors`` (selected on validation), ``val_predictions.npz``
(best model), and with a test split ``test_predictions.npz`` + ``test_metrics.json``.

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

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affectseq.errors import InputError
from affectseq.training.frame_config import EncoderOptions, FrameTrainConfig, TrainState, lr_factor

if TYPE_CHECKING:
    from affectseq.training.distributed import DistContext

log = logging.getLogger(__name__)


def train_frames(data: str | Path, config: FrameTrainConfig, run_dir: str | Path, resume: bool = False,
                 command: str | None = None, ctx: DistContext | None = None) -> dict[str, Any]:
    """Train a frame model; returns the summary also written to ``run_dir/train_summary.json``.

    ``ctx``: run as one rank of a DDP job (see ``FrameTrainer.run``); ``None``: one process.
    """
    from affectseq.training import distributed as ddp
    from affectseq.training.frame_loop import FrameTrainer

    run_dir = Path(run_dir)
    ctx = ctx or ddp.DistContext()
    # Rank 0 decides for all: the run directory may be on its node only.
    if not resume and ddp.broadcast_object(ctx.is_main and (run_dir / "checkpoint_last.pt").exists(), ctx):
        raise InputError(run_dir, "run directory already holds a training run; pass --resume or use a new --out")
    trainer = FrameTrainer(data, config, run_dir, command=command)
    return trainer.run(resume=resume, ctx=ctx)


__all__ = ["EncoderOptions", "FrameTrainConfig", "TrainState", "lr_factor", "train_frames"]
