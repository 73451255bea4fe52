"""The quick paper study end to end on generated data: table shape, finite metrics, better than chance."""

from __future__ import annotations

from pathlib import Path

import sys

import numpy as np
import pandas as pd
import pytest

from affectseq.cli import main


@pytest.mark.slow
def test_quick_paper_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "study"
    assert main(["experiment", "paper", "--quick", "--seed", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "CNN+RNN (b) balanced" in printed and "common validation frames" in printed
    check_quick_study(out)


def check_quick_study(out: Path) -> None:
    """The assertions on a finished quick study folder (also usable on a study run by hand)."""
    table = pd.read_csv(out / "results.csv")
    # 2 tasks x (CNN, CNN+RNN) x (unbalanced, balanced), every row scored on the same frames per task.
    assert len(table) == 8
    assert sorted(table["task"].unique()) == ["expr", "va"]
    for task, rows in table.groupby("task"):
        assert sorted(rows["model"]) == ["CNN", "CNN", "CNN+RNN", "CNN+RNN"]
        assert sorted(rows["balanced"]) == [False, False, True, True]
        assert rows["n_common_frames"].nunique() == 1 and rows["n_common_frames"].iloc[0] > 100
    va = table[table["task"] == "va"]
    expr = table[table["task"] == "expr"]
    for col in ("ccc_valence", "ccc_arousal", "mean_ccc"):
        assert np.isfinite(va[col]).all(), col
    for col in ("accuracy", "macro_f1", "abaw_score", "minority_recall"):
        assert np.isfinite(expr[col]).all(), col
    # Better than chance: a constant or random VA prediction has CCC ~ 0; the best row must be clearly above.
    assert va["mean_ccc"].max() > 0.15
    # EXPR chance is the macro-F1 of each row's own predictions shuffled across frames (macro_f1_chance);
    # the best row must clearly beat its chance level (by 0.04 and by half of it).
    margin = expr["macro_f1"] - expr["macro_f1_chance"]
    best = expr.loc[margin.idxmax()]
    assert best["macro_f1"] > best["macro_f1_chance"] + 0.04
    assert best["macro_f1"] > 1.5 * best["macro_f1_chance"]
    assert "macro-F1(8)" in (out / "results.md").read_text()
    # Confusion matrices of every EXPR row, counts and row-normalised.
    assert len(list((out / "confusions").glob("*_confusion_counts.png"))) == 4
    assert len(list((out / "confusions").glob("*_confusion_normalized.png"))) == 4
    assert (out / "run.json").is_file() and (out / "config.yaml").is_file()


if __name__ == "__main__":  # python tests/test_experiment_paper.py STUDY_DIR: check a study run by hand
    check_quick_study(Path(sys.argv[1]))
    print("ok")
