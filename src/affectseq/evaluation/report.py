"""``evaluate_run``: metrics, figures, tables and one Markdown report for a training run directory.

Layout written into the run directory (or ``out_dir``)::

    metrics.json                 every metric (affectseq.metrics), per task
    report.md                    the report, linking everything below
    report/confusion_counts.png, report/confusion_normalized.png
    report/per_class.csv, report/per_class.md
    report/va_scatter.png, report/va_hist2d.png
    report/training_curves.png   (when history.csv exists)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectseq import metrics as M
from affectseq.errors import InputError
from affectseq.evaluation import plots
from affectseq.evaluation.clips import scored_clip_predictions
from affectseq.evaluation.predictions import Predictions, load_predictions
from affectseq.evaluation.scores import ECE_BINS, compute_metrics, markdown_table
from affectseq.utils.atomic import write_json_atomic, write_text_atomic
from affectseq.utils.rundir import predictions_file

FIGURES_DIR = "report"


@dataclass
class EvaluationResult:
    """What :func:`evaluate_run` computed and where it wrote it (paths relative to ``out_dir``)."""

    out_dir: Path
    metrics: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)

    @property
    def report_path(self) -> Path:
        return self.out_dir / "report.md"


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON ({err})") from None


def read_history(path: Path) -> pd.DataFrame | None:
    """``history.csv`` (one row per epoch) or ``None`` if absent; an unreadable file raises InputError."""
    if not path.is_file():
        return None
    try:
        history = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a readable CSV ({err})") from None
    return history if len(history) else None


def write_expr_outputs(preds: Predictions, figures: Path, prefix: str = "") -> dict[str, str]:
    """Confusion matrices (counts, row-normalised) and the per-class table (CSV + Markdown) for one model."""
    names = preds.class_names
    n = preds.num_classes
    files: dict[str, str] = {}
    for normalize, key in ((None, "counts"), ("true", "normalized")):
        matrix = M.confusion_matrix(preds.expr_true, preds.expr_pred, n, normalize=normalize)
        title = f"{prefix}confusion ({'row-normalised' if normalize else 'counts'})"
        fig = plots.plot_confusion_matrix(matrix, names, title, normalized=normalize is not None)
        path = plots.save_figure(fig, figures / f"{prefix}confusion_{key}.png")
        files[f"confusion_{key}"] = path.name
    bins = M.reliability_bins(preds.expr_true, preds.expr_prob, ECE_BINS)
    fig = plots.plot_reliability_diagram(bins, f"{prefix}reliability",
                                         M.expected_calibration_error(preds.expr_true, preds.expr_prob, ECE_BINS))
    files["reliability"] = plots.save_figure(fig, figures / f"{prefix}reliability.png").name
    table = M.per_class_scores(preds.expr_true, preds.expr_pred, n, names)
    csv_path = figures / f"{prefix}per_class.csv"
    write_text_atomic(csv_path, table.to_csv(float_format="%.6f"))
    write_text_atomic(figures / f"{prefix}per_class.md", markdown_table(table))
    files["per_class_csv"] = csv_path.name
    files["per_class_md"] = f"{prefix}per_class.md"
    return files


def evaluate_run(run_dir: str | Path, out_dir: str | Path | None = None,
                 split: str = "validation", bootstrap: int = 0) -> EvaluationResult:
    """Evaluate ``run_dir/val_predictions.npz`` (``split="test"``: ``test_predictions.npz``).

    ``bootstrap`` > 0 adds 95% confidence intervals (that many resamples) to the metrics.
    Writes metrics.json, figures, tables and report.md into ``out_dir`` (default ``run_dir``).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(run_dir, "run directory not found")
    preds = load_predictions(run_dir / predictions_file(split))
    out = Path(out_dir) if out_dir is not None else run_dir
    figures = out / FIGURES_DIR
    figures.mkdir(parents=True, exist_ok=True)

    metrics = compute_metrics(preds, bootstrap=bootstrap)
    files: dict[str, str] = {}
    if preds.expr_true is not None:
        files.update({k: f"{FIGURES_DIR}/{v}" for k, v in write_expr_outputs(preds, figures).items()})
    if "clip" in metrics:
        clip_files = write_expr_outputs(scored_clip_predictions(preds), figures, prefix="clip_")
        files.update({f"clip_{k}": f"{FIGURES_DIR}/{v}" for k, v in clip_files.items()})
    if preds.va_true is not None:
        files["va_scatter"] = f"{FIGURES_DIR}/" + plots.save_figure(
            plots.plot_va_scatter(preds.va_true, preds.va_pred), figures / "va_scatter.png").name
        files["va_hist2d"] = f"{FIGURES_DIR}/" + plots.save_figure(
            plots.plot_va_hist2d(preds.va_true, preds.va_pred), figures / "va_hist2d.png").name
    history = read_history(run_dir / "history.csv")
    if history is not None:
        files["training_curves"] = f"{FIGURES_DIR}/" + plots.save_figure(
            plots.plot_training_curves(history), figures / "training_curves.png").name
    run_info = _read_json(run_dir / "run.json")

    write_json_atomic(out / "metrics.json", {"run_dir": str(run_dir), "split": split, **metrics, "files": files})
    write_text_atomic(out / "report.md", render_report(run_dir, metrics, files, run_info, history, split))
    files["metrics"] = "metrics.json"
    files["report"] = "report.md"
    return EvaluationResult(out_dir=out, metrics=metrics, files=files)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if np.isnan(value) else f"{value:.4f}"
    return str(value)


def render_report(run_dir: Path, metrics: dict[str, Any], files: dict[str, str],
                  run_info: dict[str, Any] | None, history: pd.DataFrame | None,
                  split: str = "validation") -> str:
    """The Markdown report text (relative links to the figures and tables)."""
    lines = [f"# Evaluation of `{run_dir.name}`", ""]
    if run_info:
        lines += ["| run | |", "|---|---|"]
        for key in ("command", "seed", "affectseq_version", "git_revision", "started_at"):
            if run_info.get(key) is not None:
                lines.append(f"| {key} | `{run_info[key]}` |")
        lines.append("")
    lines += [f"{split.capitalize()}: {metrics['n_frames']} frames from {metrics['n_videos']} video(s)/set(s).", ""]
    if history is not None:
        lines += [f"Trained {len(history)} epoch(s).", "", f"![training curves]({files['training_curves']})", ""]
    if "va" in metrics:
        va = metrics["va"]
        lines += ["## Valence / arousal", "",
                  "| CCC valence | CCC arousal | mean CCC (ABAW VA score) | annotated frames (v, a) |",
                  "|---|---|---|---|",
                  f"| {_fmt(va['ccc_valence'])} | {_fmt(va['ccc_arousal'])} | {_fmt(va['mean_ccc'])} | "
                  f"{va['n_frames'][0]}, {va['n_frames'][1]} |", "",
                  f"![VA scatter]({files['va_scatter']})", "", f"![VA 2-D histograms]({files['va_hist2d']})", ""]
    if "expr" in metrics:
        ex = metrics["expr"]
        per_class = pd.DataFrame(ex["per_class"]).set_index("class")
        lines += ["## Expressions", "",
                  "| accuracy (WAR) | UAR | macro-F1 | ABAW score | formula | ECE | NLL | annotated frames |",
                  "|---|---|---|---|---|---|---|---|",
                  f"| {_fmt(ex['accuracy'])} | {_fmt(ex['uar'])} | {_fmt(ex['macro_f1'])} | {_fmt(ex['abaw_score'])} | "
                  f"{ex['abaw_formula'] or '-'} | {_fmt(ex['ece'])} | {_fmt(ex['nll'])} | {ex['n_frames']} |", "",
                  "UAR: mean per-class recall. ECE: expected calibration error of the top-class probability "
                  f"({ex['ece_bins']} equal bins). NLL: mean -log probability of the true class.", "",
                  f"Per-class scores ([CSV]({files['per_class_csv']})):", "", markdown_table(per_class),
                  f"![confusion matrix, counts]({files['confusion_counts']})",
                  f"![confusion matrix, row-normalised]({files['confusion_normalized']})",
                  f"![reliability diagram]({files['reliability']})", ""]
    if "clip" in metrics:
        lines += clip_report_lines(metrics["clip"], files)
    if "au" in metrics:
        lines += ["## Action units", "", f"AU macro-F1: {_fmt(metrics['au']['au_macro_f1'])} "
                  f"({metrics['au']['n_annotated_entries']} annotated AU entries)", ""]
    lines += ["All numbers: `affectseq.metrics`; every metric is also in [metrics.json](metrics.json).", ""]
    return "\n".join(lines)


def clip_report_lines(clip: dict[str, Any], files: dict[str, str]) -> list[str]:
    """The report's clip section: UAR/WAR with CIs, per-class recall, the clip confusion matrices."""
    ci = clip.get("ci95")

    def with_ci(key: str) -> str:
        return _fmt(clip[key]) + (f" [{ci[key][0]:.4f}, {ci[key][1]:.4f}]" if ci else "")

    recall = " | ".join(f"{name}: {_fmt(value)}" for name, value in clip["per_class_recall"].items())
    return ["## Clips (one label per clip)", "",
            f"Scored over {clip['n_clips']} clips ({clip['aggregation']}); "
            f"{clip['n_clips_without_prediction']} clip(s) without any prediction are left out.", "",
            "| UAR (mean per-class recall) | WAR (accuracy) | macro-F1 |", "|---|---|---|",
            f"| {with_ci('uar')} | {with_ci('war')} | {_fmt(clip['macro_f1'])} |", "",
            (f"95% intervals: {ci['n_boot']} bootstrap resamples of the clips." if ci else ""), "",
            f"Per-class recall: {recall}", "",
            f"![clip confusion matrix, counts]({files['clip_confusion_counts']})",
            f"![clip confusion matrix, row-normalised]({files['clip_confusion_normalized']})", ""]
