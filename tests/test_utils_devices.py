"""The one device rule (affectseq.utils.devices.resolve_device) and DDP's use of it."""

from __future__ import annotations

import pytest
import torch

from affectseq.errors import ConfigError
from affectseq.training.distributed import DistContext
from affectseq.utils.devices import resolve_device


@pytest.fixture
def gpu_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend a CUDA GPU is visible: resolution only names devices, it never touches one."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("requested", ["auto", None, ""])
def test_auto_is_cpu_without_a_gpu(no_gpu: None, requested: str | None) -> None:
    assert resolve_device(requested) == torch.device("cpu")


@pytest.mark.parametrize("requested", ["auto", None, ""])
def test_auto_is_cuda_with_a_gpu(gpu_present: None, requested: str | None) -> None:
    assert resolve_device(requested) == torch.device("cuda")


def test_named_devices_are_taken_as_given(gpu_present: None) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("mps") == torch.device("mps")


@pytest.mark.parametrize("requested", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_a_config_error(no_gpu: None, requested: str) -> None:
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device(requested)


@pytest.mark.parametrize("requested", ["gpu", "cuda:x", "banana"])
def test_unknown_names_are_a_config_error(requested: str) -> None:
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device(requested)


def test_single_process_training_honours_cuda_n(gpu_present: None) -> None:
    """The copies disagreed: frame training mapped ``cuda:1`` to the current GPU (0), extraction and predict
    used cuda:1. One rule now: a single process uses the device asked for."""
    assert DistContext().device("cuda:1") == torch.device("cuda", 1)
    assert DistContext().device("cpu") == torch.device("cpu")
    assert DistContext().device("auto") == torch.device("cuda")


def test_ddp_ranks_use_their_own_gpu(gpu_present: None) -> None:
    ctx = DistContext(rank=1, world_size=2, local_rank=1, backend="gloo")
    assert ctx.device("auto") == torch.device("cuda", 1)
    assert ctx.device("cuda:0") == torch.device("cuda", 1)
    assert ctx.device("cpu") == torch.device("cpu")
    nccl = DistContext(rank=0, world_size=2, local_rank=0, backend="nccl")
    assert nccl.device("cpu") == torch.device("cuda", 0)  # NCCL runs on GPUs only


def test_ddp_on_cpu_machines(no_gpu: None) -> None:
    ctx = DistContext(rank=1, world_size=2, local_rank=1, backend="gloo")
    assert ctx.device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        DistContext(rank=0, world_size=2, local_rank=0, backend="nccl").device("auto")
