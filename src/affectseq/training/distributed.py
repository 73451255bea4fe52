"""PyTorch distributed data parallel (DDP) utilities shared by both training stages.

Start-up: :func:`init_distributed` reads the standard ``torchrun`` environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and
joins the process group; without it, it returns a single-process context in which
every helper here is a no-op, so one code path serves both. :func:`launch` is the
``--nproc N`` launcher for one machine (``torch.multiprocessing.spawn`` with a free
local port), for users who do not run ``torchrun`` themselves.

Equivalence with one process: DDP averages gradients over ranks, so a run on
``W`` ranks with per-rank batch ``B / W`` takes the same steps as one process with
batch ``B`` when (1) each global batch holds the same samples -- :class:`FixedOrderSampler`
shards one fixed, seeded global order so that global batch ``i`` is exactly
``order[i*B:(i+1)*B]`` whatever ``W`` is -- (2) every rank gets the same number of
samples per step (the tail that does not fill a global batch is dropped), and (3)
the loss is a plain mean over the batch with no cross-sample layers, or
BatchNorm is converted to SyncBatchNorm (:func:`prepare_model`). Losses that
average over a variable number of annotated entries per rank are equal only
approximately (the usual DDP behaviour).

Writes: only rank 0 writes run directories, checkpoints and reports
(:func:`is_main`, :func:`rank_zero_only`) and reads a resume checkpoint, which it
hands to the others (:func:`broadcast_object`); metrics that do not decompose over
samples (CCC, F1) are computed on predictions gathered from every rank
(:func:`gather_arrays`, :func:`gather_predictions`), scalar sums with
:func:`all_reduce_sum`. Both training loops (frames, sequences) take a
:class:`DistContext` and use these pieces; with one process they are no-ops.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from affectseq.errors import ConfigError
from affectseq.utils.devices import resolve_device

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
BACKENDS: tuple[str, ...] = ("auto", "gloo", "nccl")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: not distributed

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str = "auto") -> torch.device:
        """This rank's device: :func:`affectseq.utils.devices.resolve_device` of ``requested`` (NCCL: ``cuda``),
        except that under DDP a CUDA device is this rank's own GPU, ``cuda:local_rank``."""
        device = resolve_device("cuda" if self.backend == "nccl" else requested)
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device


def resolve_backend(backend: str = "auto") -> str:
    """``auto`` -> ``nccl`` when CUDA is available, else ``gloo``."""
    if backend not in BACKENDS:
        raise ConfigError(f"distributed backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    return backend


def env_context() -> DistContext:
    """The context described by the ``torchrun`` environment variables (single process when absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    return DistContext(rank=int(os.environ["RANK"]), world_size=world,
                       local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(backend: str = "auto", timeout_sec: float = 1800.0) -> DistContext:
    """Join the process group described by the environment (``torchrun``); no-op for one process.

    Idempotent: a second call returns the current context. Under NCCL each rank
    is bound to GPU ``LOCAL_RANK`` before the group starts.
    """
    ctx = env_context()
    if not ctx.enabled:
        return ctx
    name = resolve_backend(backend)
    if dist.is_initialized():
        return DistContext(ctx.rank, ctx.world_size, ctx.local_rank, dist.get_backend())
    if name == "nccl":
        torch.cuda.set_device(ctx.local_rank)
    from datetime import timedelta

    dist.init_process_group(name, rank=ctx.rank, world_size=ctx.world_size, timeout=timedelta(seconds=timeout_sec))
    return DistContext(ctx.rank, ctx.world_size, ctx.local_rank, name)


def current_context() -> DistContext:
    """The context of an already initialised process group (single process when none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())),
                       dist.get_backend())


def cleanup() -> None:
    """Leave the process group (safe to call when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    """A TCP port free on this machine right now (for ``MASTER_PORT`` of a local launch)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawned(local_rank: int, nproc: int, port: int, backend: str, fn: Callable[..., Any], args: tuple) -> None:
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(nproc),
                      LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    # Ranks share the machine's cores; without this each would start one thread per core.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    ctx = init_distributed(backend)
    try:
        fn(ctx, *args)
        # Leave together: a rank that tears its gloo group down while a peer still uses it (rank 0
        # saving a checkpoint) can make the peer abort ("terminate called without an active exception").
        if dist.is_initialized():
            dist.barrier()
    finally:
        cleanup()


def launch(fn: Callable[..., Any], nproc: int, *args: Any, backend: str = "auto") -> None:
    """Run ``fn(ctx, *args)`` on ``nproc`` local processes joined in one group (the ``--nproc`` launcher).

    ``fn`` must be importable (a module-level function). ``nproc == 1`` runs it in
    this process without a process group. An exception on any rank re-raises here.
    """
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    if nproc == 1:
        fn(DistContext(), *args)
        return
    import torch.multiprocessing as mp

    mp.spawn(_spawned, args=(nproc, free_port(), resolve_backend(backend), fn, args), nprocs=nproc, join=True)


# -- samplers -------------------------------------------------------------------------------------------------
class FixedOrderSampler(torch.utils.data.Sampler[int]):
    """This rank's share of a fixed global order, batch-aligned so DDP steps equal single-process steps.

    ``order_fn(epoch)`` returns the global order of dataset indices for an epoch
    (e.g. a seeded permutation). With a per-rank ``batch_size`` ``b``, global step
    ``i`` covers ``order[i*b*W:(i+1)*b*W]`` and rank ``r`` gets the ``r``-th
    contiguous block of ``b`` of it. With several ranks the tail that does not fill
    a whole global batch is dropped, so every rank takes the same number of steps
    (one process keeps it, like a plain loader over ``order``). Call
    :meth:`set_epoch` before each epoch, as with ``DistributedSampler``.
    """

    def __init__(self, order_fn: Callable[[int], Sequence[int] | np.ndarray], batch_size: int,
                 ctx: DistContext | None = None, epoch: int = 0):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.order_fn = order_fn
        self.batch_size = batch_size
        self.ctx = ctx or current_context()
        self.epoch = epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> np.ndarray:
        order = np.asarray(self.order_fn(self.epoch), dtype=np.int64)
        world, b = self.ctx.world_size, self.batch_size
        if world == 1:
            return order
        n_steps = len(order) // (b * world)
        steps = order[: n_steps * b * world].reshape(n_steps, world, b)
        return steps[:, self.ctx.rank, :].reshape(-1)

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        return len(self._indices())


def shard_contiguous(n_items: int, ctx: DistContext | None = None) -> np.ndarray:
    """This rank's contiguous block of ``range(n_items)`` (evaluation: every item exactly once).

    Blocks follow rank order, so results gathered with :func:`gather_arrays` come
    back in the original item order.
    """
    ctx = ctx or current_context()
    return np.array_split(np.arange(n_items, dtype=np.int64), ctx.world_size)[ctx.rank]


# -- models ---------------------------------------------------------------------------------------------------
def prepare_model(model: torch.nn.Module, ctx: DistContext, device: torch.device,
                  sync_batchnorm: bool = False, **ddp_kwargs: Any) -> torch.nn.Module:
    """Move ``model`` to ``device``; under DDP wrap it (optionally converting BatchNorm to SyncBatchNorm).

    Returns the model unchanged (but moved) for a single process. Use
    :func:`unwrap` to reach the plain module for saving. ``sync_batchnorm`` applies on
    GPUs only (torch has no CPU SyncBatchNorm); on CPU a warning says BatchNorm stays per rank.
    """
    model = model.to(device)
    if not ctx.enabled:
        return model
    if sync_batchnorm and device.type == "cpu":
        # torch's SyncBatchNorm runs on accelerators only; on CPU (gloo) each rank normalises its own batch.
        if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            log.warning("SyncBatchNorm needs a GPU: on CPU, BatchNorm statistics are computed over each "
                        "rank's part of the batch, so results differ slightly from one process")
    elif sync_batchnorm:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return ForwardingDDP(model, device_ids=ids, **ddp_kwargs)


class ForwardingDDP(torch.nn.parallel.DistributedDataParallel):
    """DDP that forwards unknown attributes (``config``, ``spec``, ...) to the wrapped module.

    Training code written for the plain model (``model.config.mode``) then runs unchanged under DDP.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("module"), name)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


# -- collectives ----------------------------------------------------------------------------------------------
def all_reduce_sum(values: Sequence[float] | np.ndarray, ctx: DistContext | None = None) -> np.ndarray:
    """Element-wise sum of ``values`` over ranks (float64), e.g. (loss sum, sample count)."""
    ctx = ctx or current_context()
    arr = np.asarray(values, dtype=np.float64)
    if not ctx.enabled:
        return arr
    device = torch.device("cuda", torch.cuda.current_device()) if ctx.backend == "nccl" else torch.device("cpu")
    tensor = torch.as_tensor(arr, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()


def reduce_mean(sum_value: float, count: float, ctx: DistContext | None = None) -> float:
    """The global mean from each rank's (sum, count) (nan when no rank counted anything)."""
    total, n = all_reduce_sum([sum_value, count], ctx)
    return float(total / n) if n > 0 else float("nan")


def gather_arrays(arrays: dict[str, np.ndarray], ctx: DistContext | None = None) -> dict[str, np.ndarray]:
    """Concatenate each array over ranks (rank order) on every rank; for non-decomposable metrics."""
    ctx = ctx or current_context()
    if not ctx.enabled:
        return arrays
    parts: list[dict[str, np.ndarray] | None] = [None] * ctx.world_size
    dist.all_gather_object(parts, arrays)
    keys = arrays.keys()
    return {k: np.concatenate([p[k] for p in parts if p is not None]) if np.ndim(arrays[k]) else arrays[k]
            for k in keys}


def gather_predictions(pred: dict[str, np.ndarray], n_batches: int,
                       ctx: DistContext | None = None) -> dict[str, np.ndarray]:
    """Every rank's evaluation output on its block (:func:`shard_contiguous`), joined in item order.

    ``pred`` is what the evaluation loops return: per-item arrays plus ``loss``, the
    mean over this rank's ``n_batches`` batches; the joined ``loss`` is the mean over
    all ranks' batches. One process: ``pred`` unchanged.
    """
    ctx = ctx or current_context()
    if not ctx.enabled:
        return pred
    arrays = {k: v for k, v in pred.items() if k != "loss"}
    loss_sum = float(pred["loss"]) * n_batches if n_batches else 0.0  # an empty block has a NaN mean
    joined = gather_arrays(arrays, ctx)
    joined["loss"] = np.asarray(reduce_mean(loss_sum, n_batches, ctx))
    return joined


def broadcast_object(obj: Any, ctx: DistContext | None = None) -> Any:
    """Rank 0's ``obj`` (any picklable value) on every rank; ``obj`` itself for one process.

    Lets only rank 0 read a file (a resume checkpoint) on a run directory the other
    nodes may not mount.
    """
    ctx = ctx or current_context()
    if not ctx.enabled:
        return obj
    box = [obj if ctx.is_main else None]
    device = torch.device("cuda", torch.cuda.current_device()) if ctx.backend == "nccl" else None
    dist.broadcast_object_list(box, src=0, device=device)
    return box[0]


def barrier(ctx: DistContext | None = None) -> None:
    """Wait for every rank (no-op for one process)."""
    ctx = ctx or current_context()
    if ctx.enabled:
        dist.barrier()


def is_main(ctx: DistContext | None = None) -> bool:
    """True on rank 0 (and in a single process): the one rank that writes files."""
    return (ctx or current_context()).is_main


def rank_zero_only(fn: F) -> F:
    """Decorator: run ``fn`` on rank 0 only; other ranks get ``None`` back."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs) if is_main() else None

    return wrapper  # type: ignore[return-value]
