"""Report plots draw on the caller's Axes (or a new pyplot-free Figure) and leave matplotlib's global state alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from affectseq.evaluation import plots

VA = np.random.default_rng(0).uniform(-1, 1, (60, 2)).astype(np.float32)
HISTORY = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_macro_f1": [0.2, 0.4]})


def test_plots_keep_the_callers_backend_and_open_no_pyplot_figures(tmp_path: Path) -> None:
    """A notebook user's backend survives importing, plotting and saving (checked in a fresh interpreter)."""
    script = textwrap.dedent(f"""
        import matplotlib
        matplotlib.use("svg")
        import numpy as np
        from affectseq.evaluation import plots
        va = np.zeros((10, 2))
        figs = [plots.plot_confusion_matrix(np.eye(3, dtype=int), "abc", "t"), plots.plot_va_scatter(va, va),
                plots.plot_va_hist2d(va, va)]
        for i, fig in enumerate(figs):
            plots.save_figure(fig, r"{tmp_path}" + f"/f{{i}}.png")
        import matplotlib.pyplot as plt
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        assert plt.get_fignums() == [], plt.get_fignums()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0.png", "f1.png", "f2.png"]
    assert (tmp_path / "f0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_draw_on_given_axes_and_return_their_figure(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    one, two, three = fig.subplots(1, 3)
    assert plots.plot_confusion_matrix(np.eye(2, dtype=int), ["x", "y"], "cm", ax=one) is fig
    assert one.get_title() == "cm"
    pair = Figure().subplots(1, 2)
    assert plots.plot_va_scatter(VA, VA, ax=pair) is pair[0].figure
    assert pair[0].get_xlabel() == "true valence" and pair[1].get_xlabel() == "true arousal"
    pair = Figure().subplots(1, 2)
    assert plots.plot_training_curves(HISTORY, ax=pair) is pair[0].figure
    assert [line.get_label() for line in pair[0].get_lines()] == ["train_loss"]
    assert list(tmp_path.iterdir()) == []  # drawing writes nothing; saving is the caller's call
    assert plots.save_figure(fig, tmp_path / "fig.png") == tmp_path / "fig.png"
    assert (tmp_path / "fig.png").stat().st_size > 0


def test_training_curves_plot_metrics_not_throughput() -> None:
    """A frame run's history carries images/s beside its metrics; only the metrics belong on the metric axis."""
    from matplotlib.figure import Figure

    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [0.9, 0.8], "val_loss": [0.6, 0.5],
                            "expr_accuracy": [0.79, 0.81], "lr": [1e-3, 9e-4],
                            "train_images_per_sec": [270.0, 80.0], "seconds": [115.0, 368.0]})
    pair = Figure().subplots(1, 2)
    plots.plot_training_curves(history, ax=pair)
    assert [line.get_label() for line in pair[0].get_lines()] == ["train_loss", "val_loss"]
    assert [line.get_label() for line in pair[1].get_lines()] == ["expr_accuracy"]
