"""Configuration of the paper study (``affectseq experiment paper``): typed, YAML + ``key=value`` overrides.

The study's settings nest the two trainings' own configs, so every option of
frame training (``frame.*``, :class:`~affectseq.training.frames.FrameTrainConfig`)
and sequence training (``sequence.*``,
:class:`~affectseq.training.sequence.SequenceTrainConfig`) can be set, e.g.
``frame.epochs=10 sequence.window=50``. The study itself sets, per row, the
fields that define the row: ``frame.task``/``sequence.task``, ``frame.balance``
and the split names and seeds; values given for those are ignored.

Priority (lowest first): the preset (``paper`` or ``quick``), a YAML file, the
command-line overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

from affectseq.config import load_config, merge_mappings, parse_overrides, read_yaml_mapping
from affectseq.errors import ConfigError
from affectseq.training.frames import FrameTrainConfig
from affectseq.training.sequence import SequenceTrainConfig


@dataclass(frozen=True)
class StudyConfig:
    """Everything the paper study depends on (saved as ``study_config.yaml`` in the output folder)."""

    task: Literal["va", "expr", "both"] = "both"
    seed: int = 0
    shuffle_time: bool = False  # the negative control: RNNs on stores shuffled in time within each video
    balance_expr: Literal["downsample", "oversample", "class_weight"] = "downsample"  # the "(b) balanced" CNN
    extract_batch_size: int = 128
    extract_workers: int = 1  # JPEG-decoding worker processes during feature extraction
    threads: int | None = None  # torch CPU threads for the whole study (None: torch's default)
    frame: FrameTrainConfig = field(default_factory=FrameTrainConfig)
    sequence: SequenceTrainConfig = field(default_factory=SequenceTrainConfig)
    synth: dict[str, Any] = field(default_factory=dict)  # --quick without --data: SynthConfig overrides
    # Extra rows comparing temporal architectures on the same feature stores: one "CNN+<ARCH>" row per name and
    # variant (e.g. [tcn, transformer]), each arch with its defaults + arch_args[name] (the sequence.* settings
    # other than sequence.model apply to all of them).
    compare_archs: tuple[str, ...] = ()
    arch_args: dict[str, Any] = field(default_factory=dict)  # {arch: {argument: value}}

    def __post_init__(self) -> None:
        from affectseq.models.registry import arch_args

        unknown = sorted(set(self.arch_args) - set(self.compare_archs))
        if unknown:
            raise ConfigError(f"arch_args names {unknown}, which are not in compare_archs")
        for name in self.compare_archs:  # checked before anything trains: a typo fails at once
            arch_args(name, self.arch_args.get(name) or {}, prefix=f"arch_args.{name}.")

    @property
    def tasks(self) -> tuple[str, ...]:
        return ("va", "expr") if self.task == "both" else (self.task,)


# The paper's setting: its CNN and GRU 100-100-50 on 100-frame sequence-to-one windows (mode auto: on a clip
# dataset, one label per clip from 16 frames sampled over it; affectseq.training.sequence_data).
PAPER_PRESET: dict[str, Any] = {
    "frame": {"encoder": {"name": "paper_cnn"}, "epochs": 20, "batch_size": 64, "patience": 5,
              "test_split": None},
    "sequence": {"mode": "auto", "window": 100, "epochs": 20, "patience": 5},
}

# Minutes on 2 CPU cores: a tiny generated dataset with milder nuisance and skew than the benchmark default
# (it is a smoke test that must learn something in a few epochs), a tiny timm CNN (test_resnet) at the crops' 64 px without augmentation, short windows.
QUICK_PRESET: dict[str, Any] = {
    "frame": {"encoder": {"name": "test_resnet", "input_size": 64, "grayscale": True}, "epochs": 4,
              "augment": {"enabled": False},
              "batch_size": 32, "eval_batch_size": 128, "lr": 3e-3, "warmup_epochs": 0.5,
              "patience": 0, "num_workers": 0, "test_split": None, "limit_train": 1500,
              "balance_target": 120, "threads": 1},
    "sequence": {"mode": "auto", "window": 16, "epochs": 6, "batch_size": 32, "lr": 2e-3, "patience": 3,
                 "model": {"hidden_sizes": [32, 32], "dropout": 0.2}, "max_windows_per_epoch": 2000},
    # One thread: on a shared or small CPU, torch's default thread pool spin-waits and ran 4-7x slower here.
    "threads": 1,
    # Many short videos: generalising to new persons needs persons more than frames.
    "synth": {"n_videos": 30, "n_frames": 120, "write_videos": False, "frame_width": 192, "frame_height": 160,
              "crop_size": 64, "val_fraction": 0.25, "two_person_fraction": 0.0,
              "affect": {"class_shares": [0.30, 0.10, 0.06, 0.06, 0.20, 0.12, 0.10, 0.06],
                         "intensity_range": [0.7, 1.0]},
              "nuisance": {"geometry_noise_std": 0.15, "identity_offset_std": 0.08, "yaw_std": 0.2}},
}


def load_study_config(
    quick: bool = False,
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    **values: Any,
) -> StudyConfig:
    """Build the study config: preset, then YAML ``path``, then ``key=value`` overrides, then ``values``."""
    merged: dict[str, Any] = merge_mappings({}, QUICK_PRESET if quick else PAPER_PRESET)
    if path is not None:
        merged = merge_mappings(merged, read_yaml_mapping(path))
    merged = merge_mappings(merged, parse_overrides(list(overrides)))
    merged = merge_mappings(merged, {k: v for k, v in values.items() if v is not None})
    return load_config(StudyConfig, overrides=merged)
