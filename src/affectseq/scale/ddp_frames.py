"""Frame-model training (stage 1) under PyTorch DDP (``affectseq scale train-frames``, ``torchrun`` or ``--nproc``).

The loop is the one training engine (:func:`affectseq.training.fit.fit` with the frame
task, :mod:`affectseq.training.frame_task`) itself, run as one rank of the process group
(nccl with one GPU per rank, ``device`` auto/cuda; gloo on CPU):

* ``config.batch_size`` is the **global** batch; the epoch's order is the one a
  single process draws, sharded batch by batch
  (:class:`~affectseq.training.distributed.FixedOrderSampler`), and augmentation
  parameters are drawn for the whole global batch on every rank, each rank keeping
  its rows -- so 1 and W processes train on identical augmented global batches;
* validation frames are split into contiguous blocks and the predictions gathered,
  so metrics and early stopping are the same on every rank; the time budget is
  checked on the ranks' mean clock, so all stop at the same step;
* only rank 0 reads ``checkpoint_last.pt`` (``--resume``; broadcast to the others),
  writes the run directory and tests the best model.

With a plain batch-mean loss (every frame annotated, no class weights), no dropout
and no BatchNorm, W ranks end with the weights of one process (tested to 1e-5 with
2 gloo processes). Dropout masks are per rank; BatchNorm becomes SyncBatchNorm on
GPUs and stays per rank on CPU (torch has no CPU SyncBatchNorm), so such models train
equivalently but not identically. The GPU path has not been run by the project's CI
(no GPU there); the CPU path is tested.
A last partial global batch of an epoch is dropped when W > 1.
"""

from __future__ import annotations

from pathlib import Path

from affectseq.training import distributed as ddp
from affectseq.training.frames import FrameTrainConfig, TrainResult, train_frames


def train_frames_distributed(
    data: str | Path,
    config: FrameTrainConfig,
    run_dir: str | Path,
    ctx: ddp.DistContext | None = None,
    resume: bool = False,
    command: str | None = None,
    allow_config_change: bool = False,
) -> TrainResult:
    """Train a frame model with data parallelism over the ranks of ``ctx``; the summary on every rank.

    Every rank calls this with the same arguments (``ctx`` defaults to the current
    process group; one process when none). Start the ranks with ``torchrun`` (after
    :func:`affectseq.training.distributed.init_distributed`)
    or :func:`affectseq.training.distributed.launch`. ``allow_config_change``: as in :func:`train_frames`.
    """
    return train_frames(data, run_dir, config, resume=resume, command=command, ctx=ctx or ddp.current_context(),
                        allow_config_change=allow_config_change)
