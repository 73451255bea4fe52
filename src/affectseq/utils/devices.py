"""Which torch device a ``--device`` / ``device:`` setting means: the one rule every stage uses.

Rule: ``auto`` (or ``None``/empty) is CUDA when a GPU is visible, else CPU; a CUDA
device (``cuda``, ``cuda:N``) asked for on a machine without one is a
:class:`~affectseq.errors.ConfigError` at once, not a torch error deep in a run; any
other name (``cpu``, ``mps``...) is taken as given. Under DDP, each rank's GPU is
chosen by ``affectseq.training.distributed.DistContext.device``, which starts from
this function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from affectseq.errors import ConfigError

if TYPE_CHECKING:
    import torch

AUTO_NAMES = (None, "", "auto")


def resolve_device(requested: str | None = "auto") -> "torch.device":
    """The ``torch.device`` for ``requested`` (see the module's rule); ConfigError for an unusable name."""
    import torch  # here, not at import: predict's start-up imports this module before it needs torch

    if requested in AUTO_NAMES:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(str(requested))
    except RuntimeError:
        raise ConfigError(f"unknown device {requested!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {requested}: no CUDA GPU is available (use cpu or auto)")
    return device


# Device nodes a CUDA (or ROCm / WSL) driver creates; without any, torch.cuda.is_available() is False.
_GPU_DRIVER_NODES = ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def resolve_device_name(requested: str | None = "auto") -> str:
    """:func:`resolve_device` as a name (``"cpu"``, ``"cuda"``...), importing torch only when it must.

    ``cpu``, and ``auto`` on a machine without a GPU driver (or without torch), are ``"cpu"``
    at once: ``predict`` on ONNX Runtime would otherwise import torch (seconds) only to learn
    that there is no GPU. Everything else goes through :func:`resolve_device`, the one rule.
    """
    import importlib.util
    import os

    if requested == "cpu":
        return "cpu"
    if requested in AUTO_NAMES and (importlib.util.find_spec("torch") is None
                                    or not any(os.path.exists(p) for p in _GPU_DRIVER_NODES)):
        return "cpu"
    return str(resolve_device(requested))
