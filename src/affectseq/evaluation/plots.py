"""Report figures (PNG): confusion matrices, VA scatter and 2-D histograms, training curves.

matplotlib is imported inside each function with the non-interactive Agg
backend, so importing this module is cheap and plotting works without a display.
Every figure is written atomically and closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from affectseq.utils.atomic import atomic_path

_MAX_SCATTER_POINTS = 20_000  # beyond this a scatter is a blob; subsample (seeded) for speed and file size


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str], path: str | Path, title: str, normalized: bool = False
) -> Path:
    """One confusion matrix (rows true, columns predicted) via scikit-learn's ``ConfusionMatrixDisplay``."""
    plt = _pyplot()
    from sklearn.metrics import ConfusionMatrixDisplay

    size = 1.2 + 0.75 * len(class_names)
    fig, ax = plt.subplots(figsize=(size, size))
    display = ConfusionMatrixDisplay(confusion_matrix=np.asarray(matrix), display_labels=list(class_names))
    display.plot(ax=ax, cmap="Blues", colorbar=False, values_format=".2f" if normalized else "d",
                 xticks_rotation=45)
    if normalized:
        display.im_.set_clim(0.0, 1.0)  # comparable colours across runs
    ax.set_title(title)
    return _save(fig, path)


def plot_va_scatter(va_true: np.ndarray, va_pred: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Prediction vs. truth for valence and arousal (annotated frames), identity line for reference."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4))
    rng = np.random.default_rng(0)
    for d, (ax, name) in enumerate(zip(axes, ("valence", "arousal"))):
        t, p = va_true[:, d], va_pred[:, d]
        keep = np.flatnonzero(~(np.isnan(t) | np.isnan(p)))
        if keep.size > _MAX_SCATTER_POINTS:
            keep = rng.choice(keep, _MAX_SCATTER_POINTS, replace=False)
        ax.scatter(t[keep], p[keep], s=3, alpha=0.3, linewidths=0)
        ax.plot([-1, 1], [-1, 1], color="grey", lw=1, ls="--")
        ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xlabel=f"true {name}", ylabel=f"predicted {name}",
               aspect="equal")
    fig.suptitle(title or "VA predictions vs. truth")
    return _save(fig, path)


def plot_va_hist2d(va_true: np.ndarray, va_pred: np.ndarray, path: str | Path, bins: int = 40) -> Path:
    """2-D histograms over the valence-arousal plane of the truth and of the predictions (log colour)."""
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    for ax, values, name in zip(axes, (va_true, va_pred), ("truth", "prediction")):
        rows = values[~np.isnan(values).any(axis=1)]
        _, _, _, image = ax.hist2d(rows[:, 0], rows[:, 1], bins=bins, range=[[-1, 1], [-1, 1]],
                                   cmin=1, norm=LogNorm(), cmap="viridis")
        ax.set(xlabel="valence", ylabel="arousal", title=f"{name} ({len(rows)} frames)", aspect="equal")
        fig.colorbar(image, ax=ax, fraction=0.046, label="frames per bin")
    return _save(fig, path)


def plot_training_curves(history: pd.DataFrame, path: str | Path) -> Path:
    """Losses (left) and every other numeric validation column (right) against the epoch."""
    plt = _pyplot()
    x = history["epoch"] if "epoch" in history else np.arange(1, len(history) + 1)
    loss_cols = [c for c in history.columns if c.endswith("loss")]
    skip = {"epoch", "seconds", "lr", *loss_cols}
    metric_cols = [c for c in history.columns if c not in skip and pd.api.types.is_numeric_dtype(history[c])]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for col in loss_cols:
        axes[0].plot(x, history[col], marker="o", ms=3, label=col)
    axes[0].set(xlabel="epoch", title="loss")
    for col in metric_cols:
        axes[1].plot(x, history[col], marker="o", ms=3, label=col)
    axes[1].set(xlabel="epoch", title="validation metrics")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)
