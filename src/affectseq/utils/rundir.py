"""Run directories: every training/evaluation run records what it needs to be reproduced."""

from __future__ import annotations

import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from affectseq import __version__
from affectseq.config import config_to_dict
from affectseq.utils.atomic import write_json_atomic, write_text_atomic


def save_config(config: Any, path: str | Path) -> None:
    """Write the resolved configuration (:func:`affectseq.config.config_to_dict`) as YAML, atomically."""
    write_text_atomic(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


_PREDICTION_PREFIX = {"validation": "val", "test": "test", "train": "train"}


def predictions_file(split_role: str = "validation") -> str:
    """A run directory's predictions file for a split role: ``val_predictions.npz``, ``test_predictions.npz``..."""
    if split_role not in _PREDICTION_PREFIX:
        raise ValueError(f"split must be one of {', '.join(_PREDICTION_PREFIX)}, not {split_role!r}")
    return f"{_PREDICTION_PREFIX[split_role]}_predictions.npz"


def git_revision(start: Path | None = None) -> str | None:
    """The git commit of the source tree (``-dirty`` if modified), or ``None`` outside a repository."""
    cwd = start or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


def init_run_dir(run_dir: str | Path, config: Any, seed: int, command: str | None = None) -> Path:
    """Create ``run_dir`` and write ``config.yaml`` and ``run.json`` (seed, version, git revision, time)."""
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    save_config(config, path / "config.yaml")
    import torch  # local: run dirs are also made by numpy-only stages

    write_json_atomic(
        path / "run.json",
        {
            "seed": seed,
            "affectseq_version": __version__,
            "git_revision": git_revision(),
            "command": command,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "config": config_to_dict(config),
        },
    )
    return path
