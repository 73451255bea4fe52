"""``experiment paper`` can compare temporal architectures on the same feature stores (``compare_archs``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from affectseq.errors import ConfigError
from affectseq.experiments import arms
from affectseq.experiments.study_config import load_study_config


def test_compare_archs_are_checked_before_anything_trains() -> None:
    config = load_study_config(quick=True, overrides=["compare_archs=[tcn, transformer]",
                                                      "arch_args.tcn.channels=[8, 8]"])
    assert config.compare_archs == ("tcn", "transformer")
    tcn = arms.sequence_config(config, "va", "train", "validation", arch="tcn")
    assert tcn.model.arch == "tcn" and tcn.model.args["channels"] == [8, 8]
    assert tcn.window == config.sequence.window and tcn.epochs == config.sequence.epochs  # same settings otherwise
    assert arms.sequence_config(config, "va", "train", "validation").model == config.sequence.model
    with pytest.raises(ConfigError, match="unknown temporal architecture 'tnc'; registered"):
        load_study_config(quick=True, overrides=["compare_archs=[tnc]"])
    with pytest.raises(ConfigError, match=r"arch_args\.tcn\..*hidden_sizes"):
        load_study_config(quick=True, overrides=["compare_archs=[tcn]", "arch_args.tcn.hidden_sizes=[8]"])
    with pytest.raises(ConfigError, match="not in compare_archs"):
        load_study_config(quick=True, overrides=["arch_args.tcn.kernel_size=2"])


@pytest.mark.slow
def test_quick_study_adds_a_row_per_arch_on_the_same_store(tmp_path: Path) -> None:
    from affectseq.cli import main

    out = tmp_path / "study"
    assert main(["experiment", "paper", "--quick", "--task", "va", "--seed", "0", "--out", str(out), "--set",
                 "compare_archs=[tcn]", "arch_args.tcn.channels=[16,16]", "sequence.epochs=2"]) == 0
    table = pd.read_csv(out / "results.csv")
    assert sorted(table["model"]) == ["CNN", "CNN", "CNN+RNN", "CNN+RNN", "CNN+TCN", "CNN+TCN"]
    assert table["n_common_frames"].nunique() == 1  # every row scored on the same frames
    for variant in ("unbalanced", "balanced"):
        header = (out / f"va_{variant}" / "temporal_tcn" / "config.yaml").read_text()
        assert "arch: tcn" in header
        assert (out / f"va_{variant}" / "features").is_dir()  # the one store both temporal models read
