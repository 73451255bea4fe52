"""Mean +- std of study tables over seeds (``affectseq experiment aggregate results.csv ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from affectseq.errors import InputError

METRICS: tuple[str, ...] = ("ccc_valence", "ccc_arousal", "mean_ccc", "accuracy", "macro_f1", "macro_f1_chance",
                            "abaw_score", "minority_recall")


def load_tables(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Concatenate ``results.csv`` files (one per seed), adding a ``source`` column."""
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise InputError(path, f"not a readable results table ({err})") from None
        if not {"task", "row"} <= set(frame.columns):
            raise InputError(path, "not a study results table (needs task and row columns)")
        frames.append(frame.assign(source=str(path)))
    if not frames:
        raise InputError(".", "no results tables given")
    return pd.concat(frames, ignore_index=True)


def aggregate(table: pd.DataFrame) -> pd.DataFrame:
    """Per (task, row): ``n_seeds`` and mean/std (ddof 1) of every metric column present."""
    metrics = [m for m in METRICS if m in table.columns]
    grouped = table.groupby(["task", "row"], sort=False)
    out = grouped[metrics].agg(["mean", "std"])
    out.columns = [f"{metric}_{stat}" for metric, stat in out.columns]
    out.insert(0, "n_seeds", grouped.size())
    return out.reset_index()


def format_mean_std(summary: pd.DataFrame, task: str, digits: int = 3) -> str:
    """A Markdown table of ``mean +- std`` cells for one task."""
    rows = summary[summary["task"] == task]
    metrics = [m for m in METRICS if f"{m}_mean" in rows.columns and rows[f"{m}_mean"].notna().any()]
    lines = ["| row | seeds | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for _, r in rows.iterrows():
        cells = []
        for m in metrics:
            mean, std = r[f"{m}_mean"], r[f"{m}_std"]
            cells.append(f"{mean:.{digits}f}" + ("" if np.isnan(std) else f" ± {std:.{digits}f}"))
        lines.append(f"| {r['row']} | {int(r['n_seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
