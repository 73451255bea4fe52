"""The study's outputs: results table (CSV + Markdown), per-row confusion matrices, printed summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from affectseq import metrics as M
from affectseq.evaluation.report import write_expr_outputs
from affectseq.evaluation.scores import markdown_table
from affectseq.experiments.alignment import AlignedRows
from affectseq.utils.atomic import write_text_atomic

VA_COLUMNS = ["n_frames", "ccc_valence", "ccc_arousal", "mean_ccc"]
EXPR_COLUMNS = ["n_frames", "accuracy", "uar", "macro_f1", "macro_f1_chance", "abaw_score"]
TASK_TITLES = {"va": "Valence / arousal (CCC)", "expr": "Expressions"}


def slug(name: str) -> str:
    """File-name-safe form of a row name."""
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def write_confusions(aligned: AlignedRows, out_dir: Path, task: str) -> dict[str, dict[str, str]]:
    """Confusion matrices (counts + row-normalised) and per-class tables of every EXPR row, on the common frames."""
    files: dict[str, dict[str, str]] = {}
    if task != "expr":
        return files
    for name, preds in aligned.rows.items():
        written = write_expr_outputs(preds, out_dir, prefix=f"{slug(name)}_")
        files[name] = {k: f"{out_dir.name}/{v}" for k, v in written.items()}
    return files


def minority_recall(aligned: AlignedRows, num_classes: int, k: int = 3) -> dict[str, float]:
    """Mean recall of the ``k`` rarest true classes on the common frames, per row (the paper's finding)."""
    first = next(iter(aligned.rows.values()))
    counts = np.bincount(first.expr_true[first.expr_true >= 0], minlength=num_classes)
    present = np.flatnonzero(counts > 0)
    rarest = present[np.argsort(counts[present], kind="stable")[:k]]
    out = {}
    for name, preds in aligned.rows.items():
        norm = M.confusion_matrix(preds.expr_true, preds.expr_pred, num_classes, normalize="true")
        out[name] = float(np.mean(np.diag(norm)[rarest])) if rarest.size else float("nan")
    return out


def render_markdown(tables: Mapping[str, pd.DataFrame], notes: Mapping[str, list[str]],
                    confusion_files: Mapping[str, Mapping[str, Mapping[str, str]]], header: list[str]) -> str:
    """The study report: one table per task, with its notes and links to every row's confusion matrices."""
    lines = ["# Paper study: CNN vs. CNN + RNN, unbalanced vs. balanced", "", *header, ""]
    for task, table in tables.items():
        cols = VA_COLUMNS if task == "va" else EXPR_COLUMNS + (["minority_recall"] if "minority_recall" in table
                                                               else [])
        shown = table.set_index("row")[cols]
        lines += [f"## {TASK_TITLES[task]}", "", *notes.get(task, []), "", markdown_table(shown), ""]
        for name, files in confusion_files.get(task, {}).items():
            lines.append(f"- {name}: [counts]({files['confusion_counts']}), "
                         f"[row-normalised]({files['confusion_normalized']}), [per class]({files['per_class_md']})")
        lines.append("")
    return "\n".join(lines)


def write_results(out_dir: Path, tables: Mapping[str, pd.DataFrame], notes: Mapping[str, list[str]],
                  confusion_files: Mapping[str, Any], header: list[str]) -> dict[str, Path]:
    """``results.csv`` (all tasks, one row per model) and ``results.md``; returns their paths."""
    combined = pd.concat(list(tables.values()), ignore_index=True, sort=False)
    csv_path = out_dir / "results.csv"
    md_path = out_dir / "results.md"
    write_text_atomic(csv_path, combined.to_csv(index=False, float_format="%.6f"))
    write_text_atomic(md_path, render_markdown(tables, notes, confusion_files, header))
    return {"csv": csv_path, "markdown": md_path}


def format_for_terminal(tables: Mapping[str, pd.DataFrame]) -> str:
    """Plain-text tables for printing (pandas formatting, 4 decimals)."""
    parts = []
    for task, table in tables.items():
        cols = ["row"] + (VA_COLUMNS if task == "va" else EXPR_COLUMNS)
        if task == "expr" and "minority_recall" in table:
            cols.append("minority_recall")
        title = TASK_TITLES[task]
        if task == "expr":
            title += f" -- ABAW score = {table['abaw_formula'].iloc[0]}"
        parts.append(f"{title} ({int(table['n_common_frames'].iloc[0])} common validation frames)\n"
                     + table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return "\n\n".join(parts)
