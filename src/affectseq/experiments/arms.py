"""One arm of the paper study: train a frame CNN, extract its features, train an RNN on them.

An arm is a (task, variant) pair, e.g. ("expr", "balanced"). Its folder holds::

    cnn/                  frame-training run (run-directory contract)
    features/             feature store made with cnn/checkpoint_best.safetensors
    features_shuffled/    the store shuffled in time (negative control only)
    rnn/, rnn_shuffled/   sequence-training runs on those stores
    temporal_<arch>/      the same store, another temporal architecture (``compare_archs``)

Every step skips work that a previous (possibly interrupted) study finished and
resumes interrupted trainings, so a study can be rerun into the same folder, and
``--shuffle-time`` after a normal study reuses its CNNs and stores.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectseq.data.splits import find_split
from affectseq.errors import InputError
from affectseq.experiments.study_config import StudyConfig

log = logging.getLogger(__name__)

VARIANTS: tuple[str, ...] = ("unbalanced", "balanced")


@dataclass(frozen=True)
class ArmPaths:
    """Where an arm's runs live."""

    root: Path

    @property
    def cnn(self) -> Path:
        return self.root / "cnn"

    def store(self, shuffled: bool = False) -> Path:
        return self.root / ("features_shuffled" if shuffled else "features")

    def rnn(self, shuffled: bool = False) -> Path:
        return self.root / ("rnn_shuffled" if shuffled else "rnn")

    def temporal(self, arch: str) -> Path:
        """The run of an extra architecture compared on the arm's store (``compare_archs``)."""
        return self.root / f"temporal_{arch}"


def frame_config(config: StudyConfig, task: str, variant: str, train_split: str, val_split: str):
    """The frame-training config of an arm: the study's ``frame`` settings with the arm's task and balancing."""
    if variant == "unbalanced":
        balance = "none"
    elif task == "va":
        balance = "downsample"  # the paper's VA downsampling (affectseq.data.balance.VADownsampler)
    else:
        balance = config.balance_expr
    return dataclasses.replace(config.frame, task=task, balance=balance, train_split=train_split,
                               val_split=val_split, test_split=None, seed=config.seed)


def sequence_config(config: StudyConfig, task: str, train_split: str, val_split: str, arch: str | None = None):
    """The sequence-training config of an arm (the RNN itself is trained on unbalanced windows, as in the paper).

    ``arch``: one of ``compare_archs`` instead of ``sequence.model`` (its defaults + ``arch_args[arch]``).
    """
    from affectseq.training.sequence import SequenceModelConfig

    extra: dict[str, Any] = {}
    if arch is not None:
        extra["model"] = SequenceModelConfig(arch=arch, args=config.arch_args.get(arch) or {})
    return dataclasses.replace(config.sequence, task=task, train_split=train_split, val_split=val_split,
                               seed=config.seed, **extra)


def train_cnn(data: Path, config: StudyConfig, task: str, variant: str, splits: tuple[str, str],
              paths: ArmPaths) -> Path:
    """Train (or resume, or skip when finished) the arm's frame CNN; returns its best checkpoint."""
    from affectseq.training.frames import train_frames

    run_dir = paths.cnn
    best = run_dir / "checkpoint_best.safetensors"
    if (run_dir / "train_summary.json").is_file() and best.is_file():
        log.info("%s: finished earlier, skipped", run_dir)
        return best
    cfg = frame_config(config, task, variant, *splits)
    resume = (run_dir / "checkpoint_last.pt").exists()
    train_frames(data, run_dir, cfg, resume=resume, command=f"affectseq experiment paper ({task}, {variant})")
    if not best.is_file():
        raise InputError(run_dir, "frame training ended without a best checkpoint")
    return best


def extract_store(data: Path, checkpoint: Path, task: str, config: StudyConfig, paths: ArmPaths) -> Path:
    """Run the arm's CNN over every frame of the task's videos into a feature store (resumable)."""
    from affectseq.data.registry import open_dataset
    from affectseq.models.factory import load_frame_model
    from affectseq.features.extract import extract_features

    store = paths.store()
    model = load_frame_model(checkpoint)
    extract_features(TaskView(open_dataset(data), task), model, store, checkpoint_path=checkpoint,
                     batch_size=config.extract_batch_size, num_workers=config.extract_workers, device="cpu",
                     progress=False)
    return store


class TaskView:
    """A video dataset (any registered layout) seen through one task, so extraction encodes only its videos."""

    def __init__(self, dataset: Any, task: str):
        self._dataset = dataset
        self.tasks = (task.upper(),)
        self.root = dataset.root
        self.expr_classes = dataset.expr_classes

    def splits(self, task: str) -> tuple[str, ...]:
        return self._dataset.splits(task)

    def videos(self, task: str, split: str) -> list[Any]:
        return self._dataset.videos(task, split)


def shuffled_store(config: StudyConfig, paths: ArmPaths) -> Path:
    """The negative-control copy of the arm's store (frames shuffled in time within each video)."""
    from affectseq.experiments.shuffle import shuffle_store_in_time

    dest = paths.store(shuffled=True)
    shuffle_store_in_time(paths.store(), dest, seed=config.seed)
    return dest


def store_splits(store: Path, task: str) -> tuple[str, str]:
    """(train, validation) split names as the store records them."""
    from affectseq.features.store import FeatureStore

    names = FeatureStore(store).splits(task)
    return _pick_splits(names, store)


def _pick_splits(names: list[str] | tuple[str, ...], where: Path) -> tuple[str, str]:
    train, val = find_split(names, "train"), find_split(names, "validation")
    if train is None or val is None:
        raise InputError(where, f"need a training and a validation split (found: {', '.join(names) or 'none'})")
    return train, val


def train_rnn(config: StudyConfig, task: str, store: Path, run_dir: Path, arch: str | None = None) -> Path:
    """Train (or resume; a finished run returns at once) the arm's RNN on ``store``; returns the run dir.

    ``arch``: train that architecture of ``compare_archs`` instead of ``sequence.model``.
    """
    from affectseq.training.sequence import train_sequence

    cfg = sequence_config(config, task, *store_splits(store, task), arch=arch)
    resume = (run_dir / "checkpoint_last.pt").exists()
    train_sequence(store, run_dir, cfg, resume=resume,
                   command=f"affectseq experiment paper ({task}, {arch or 'rnn'})")
    if not (run_dir / "val_predictions.npz").is_file():
        raise InputError(run_dir, "sequence training ended without validation predictions")
    return run_dir
