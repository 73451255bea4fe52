"""Shared fixtures: the read-only real data in ../shared and small generated inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("AFFECTSEQ_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (real clips and FER2013); CI provides it, so a missing copy is an error, not a skip."""
    if not (SHARED_DIR / "clips").is_dir():
        pytest.fail(f"{SHARED_DIR}: shared data folder not found (set AFFECTSEQ_SHARED)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def clips_dir(shared_dir: Path) -> Path:
    return shared_dir / "clips"


@pytest.fixture(scope="session")
def fer2013_path(shared_dir: Path) -> Path:
    return shared_dir / "data" / "fer2013.npz"


@pytest.fixture(scope="session")
def ferplus_path(shared_dir: Path) -> Path:
    return shared_dir / "data" / "ferplus.npz"


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module, the caller's count restored after it.

    MTCNN's tiny convolutions gain nothing from a second thread, and on a busy 2-core
    machine OpenMP's spinning threads make them many times slower. Use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    from affectseq.utils.threads import torch_threads

    with torch_threads(1):
        yield
