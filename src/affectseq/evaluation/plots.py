"""Report figures: confusion matrices, VA scatter and 2-D histograms, training curves.

Compute, then render, then save -- three separate steps, as in scikit-learn's ``*Display``:

* each ``plot_*`` function draws on the ``ax`` it is given (the two-panel plots take a pair
  of Axes) or, with ``ax=None``, on a new :class:`matplotlib.figure.Figure`, and returns that
  Figure. Figures are made with the object-oriented API, never pyplot, so plotting touches no
  global state: a notebook keeps its backend and its open figures;
* :func:`save_figure` writes a Figure as PNG, atomically; writing files is the caller's job
  (:mod:`affectseq.evaluation.report`).

matplotlib is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from affectseq.utils.atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_MAX_SCATTER_POINTS = 20_000  # beyond this a scatter is a blob; subsample (seeded) for speed and file size
SAVE_DPI = 110


def _new_axes(ax: Any, n: int, **figure_kw: Any) -> tuple[Figure, Any]:
    """``(figure, axes)``: ``ax``'s own figure when given, else a new pyplot-free Figure with ``n`` Axes."""
    if ax is not None:
        first = ax if n == 1 else ax[0]
        return first.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(**figure_kw)
    return fig, fig.subplots(1, n)


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically (a reader never sees half a file); returns ``path``.

    A Figure made without pyplot gets an Agg canvas here, so saving needs no backend and
    switches none; a pyplot figure keeps its own canvas.
    """
    from matplotlib.backend_bases import FigureCanvasBase
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if type(fig.canvas) is FigureCanvasBase:
        FigureCanvasAgg(fig)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=SAVE_DPI, bbox_inches="tight")
    return path


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], title: str = "",
                          normalized: bool = False, ax: Any = None) -> Figure:
    """One confusion matrix (rows true, columns predicted) via scikit-learn's ``ConfusionMatrixDisplay``."""
    from sklearn.metrics import ConfusionMatrixDisplay

    size = 1.2 + 0.75 * len(class_names)
    fig, ax = _new_axes(ax, 1, figsize=(size, size))
    display = ConfusionMatrixDisplay(confusion_matrix=np.asarray(matrix), display_labels=list(class_names))
    display.plot(ax=ax, cmap="Blues", colorbar=False, values_format=".2f" if normalized else "d",
                 xticks_rotation=45)
    if normalized:
        display.im_.set_clim(0.0, 1.0)  # comparable colours across runs
    ax.set_title(title)
    return fig


def plot_va_scatter(va_true: np.ndarray, va_pred: np.ndarray, title: str = "", ax: Any = None) -> Figure:
    """Prediction vs. truth for valence and arousal (annotated frames), identity line for reference.

    ``ax``: two Axes (valence, arousal); the title becomes the figure's title only on a new figure.
    """
    fig, axes = _new_axes(ax, 2, figsize=(9, 4.4))
    rng = np.random.default_rng(0)  # the subsample is the same on every call
    for d, (axis, name) in enumerate(zip(axes, ("valence", "arousal"))):
        t, p = va_true[:, d], va_pred[:, d]
        keep = np.flatnonzero(~(np.isnan(t) | np.isnan(p)))
        if keep.size > _MAX_SCATTER_POINTS:
            keep = rng.choice(keep, _MAX_SCATTER_POINTS, replace=False)
        axis.scatter(t[keep], p[keep], s=3, alpha=0.3, linewidths=0)
        axis.plot([-1, 1], [-1, 1], color="grey", lw=1, ls="--")
        axis.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xlabel=f"true {name}", ylabel=f"predicted {name}",
                 aspect="equal")
    if ax is None:
        fig.suptitle(title or "VA predictions vs. truth")
    return fig


def plot_va_hist2d(va_true: np.ndarray, va_pred: np.ndarray, bins: int = 40, ax: Any = None) -> Figure:
    """2-D histograms over the valence-arousal plane of the truth and of the predictions (log colour).

    ``ax``: two Axes (truth, prediction).
    """
    from matplotlib.colors import LogNorm

    fig, axes = _new_axes(ax, 2, figsize=(11, 4.6), layout="constrained")
    for axis, values, name in zip(axes, (va_true, va_pred), ("truth", "prediction")):
        rows = values[~np.isnan(values).any(axis=1)]
        _, _, _, image = axis.hist2d(rows[:, 0], rows[:, 1], bins=bins, range=[[-1, 1], [-1, 1]],
                                     cmin=1, norm=LogNorm(), cmap="viridis")
        axis.set(xlabel="valence", ylabel="arousal", title=f"{name} ({len(rows)} frames)", aspect="equal")
        fig.colorbar(image, ax=axis, fraction=0.046, label="frames per bin")
    return fig


def plot_training_curves(history: pd.DataFrame, ax: Any = None) -> Figure:
    """Losses (left) and every other numeric validation column (right) against the epoch.

    ``ax``: two Axes (losses, metrics). Bookkeeping columns (epoch, lr, timings such as
    ``seconds`` or ``train_images_per_sec``) are left out: on a 0-1 metric axis a throughput
    of hundreds would flatten every curve.
    """
    x = history["epoch"] if "epoch" in history else np.arange(1, len(history) + 1)
    loss_cols = [c for c in history.columns if c.endswith("loss")]
    skip = {"epoch", "seconds", "lr", *loss_cols}
    metric_cols = [c for c in history.columns if c not in skip and not c.endswith(("_per_sec", "_seconds"))
                   and pd.api.types.is_numeric_dtype(history[c])]
    fig, axes = _new_axes(ax, 2, figsize=(10, 4))
    for col in loss_cols:
        axes[0].plot(x, history[col], marker="o", ms=3, label=col)
    axes[0].set(xlabel="epoch", title="loss")
    for col in metric_cols:
        axes[1].plot(x, history[col], marker="o", ms=3, label=col)
    axes[1].set(xlabel="epoch", title="validation metrics")
    for axis in axes:
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    return fig


def plot_reliability_diagram(bins: dict[str, np.ndarray], title: str = "", ece: float | None = None,
                             ax: Any = None) -> Figure:
    """Reliability diagram of :func:`affectseq.metrics.reliability_bins`: per confidence bin, the fraction
    classified correctly (bars) against the diagonal a calibrated model follows; bar shading and the
    lower strip show how many faces fall in each bin."""
    fig, ax = _new_axes(ax, 1, figsize=(4.2, 4.2))
    edges, count = bins["edges"], bins["count"]
    width = np.diff(edges)
    used = count > 0
    share = count / max(int(count.sum()), 1)
    ax.bar(edges[:-1][used], bins["accuracy"][used], width=width[used], align="edge", color="#4C72B0",
           edgecolor="white", label="accuracy in bin")
    gap_low = np.minimum(bins["accuracy"][used], bins["confidence"][used])
    ax.bar(edges[:-1][used], np.abs(bins["accuracy"][used] - bins["confidence"][used]), bottom=gap_low,
           width=width[used], align="edge", color="#DD8452", alpha=0.45, label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.3", linewidth=1, label="calibrated")
    ax.bar(edges[:-1], share / max(float(share.max()), 1e-12) * 0.25, width=width, align="edge", bottom=-0.3,
           color="0.6", label="faces per bin (relative)")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.3, 1.0)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel("top-class probability (confidence)")
    ax.set_ylabel("fraction correct")
    text = f"{title}  ECE {ece:.3f}" if ece is not None else title
    ax.set_title(text.strip(), fontsize=10)
    ax.legend(loc="upper left", fontsize=7)
    return fig
