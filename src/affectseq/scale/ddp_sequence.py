"""Sequence training (stage 2) under PyTorch DDP (``affectseq scale train-sequence``, with ``torchrun`` or ``--nproc``).

The loop is the one training engine (:func:`affectseq.training.fit.fit` with
:class:`affectseq.training.sequence.SequenceTask`, as ``train_sequence`` runs it) itself,
run as one rank of the process group with the distributed pieces of
:mod:`affectseq.training.distributed`:

* ``config.batch_size`` is the **global** batch; each of ``W`` ranks takes
  ``batch_size / W`` windows of the same seeded epoch order as the single-process
  loop (:class:`~affectseq.training.distributed.FixedOrderSampler`), so a global
  step sees the same windows whatever ``W`` is;
* validation windows are split into contiguous blocks over ranks and the
  predictions gathered, so metrics (CCC, F1) are computed on every validation
  window exactly once, identically on all ranks (early stopping agrees);
* only rank 0 writes the run directory (config, history, checkpoints,
  ``val_predictions.npz``) -- same contract as the single-process run.

A one-rank run is the single-process run; with ``W > 1`` a last partial global
batch of an epoch is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from affectseq.training import distributed as ddp
from affectseq.training.sequence import (
    SequenceRunResult,
    SequenceTrainConfig,
    epoch_order,
    train_sequence,
)


def train_sequence_distributed(
    store_path: str | Path,
    run_dir: str | Path,
    config: SequenceTrainConfig = SequenceTrainConfig(),
    ctx: ddp.DistContext | None = None,
    resume: bool = False,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    command: str | None = None,
    allow_config_change: bool = False,
) -> SequenceRunResult:
    """Train a temporal model on a feature store with data parallelism over the ranks of ``ctx``.

    Every rank calls this with the same arguments (``ctx`` defaults to the current
    process group; single process when none). Returns the same result on every rank.
    ``allow_config_change``: as in :func:`train_sequence`.
    """
    return train_sequence(store_path, run_dir, config, resume=resume, on_epoch_end=on_epoch_end, command=command,
                          ctx=ctx or ddp.current_context(), allow_config_change=allow_config_change)


__all__ = ["epoch_order", "train_sequence_distributed"]  # epoch_order: importable from here as before
