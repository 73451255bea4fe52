"""``timeline.png``: expression probabilities (and valence/arousal) over time, readable at a glance.

One panel per face track (the longest few): a stacked area of the class
probabilities in fixed, meaningful colours (happiness warm yellow, sadness
blue, anger red ...), a strip above it with the winning label, grey where the
face is missing, and the dominant expression in the title. Models with a VA
head get an extra valence/arousal panel on [-1, 1]; models without one get none.
Uses the object-oriented matplotlib API (no pyplot global state).
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from affectseq.predict.table import prob_column
from affectseq.utils.atomic import atomic_path

CLASS_COLORS: dict[str, str] = {
    "Neutral": "#9e9e9e",
    "Anger": "#d62728",
    "Disgust": "#6b8e23",
    "Fear": "#9467bd",
    "Happiness": "#ffbf00",
    "Sadness": "#1f77b4",
    "Surprise": "#17becf",
    "Other": "#8c564b",
    "Contempt": "#e377c2",  # FER+ models' eighth class
}
MAX_FACE_PANELS = 3
FIG_WIDTH_IN = 12
MAX_DRAWN_POINTS = 2000  # per series: more than the 1,200 pixel columns of the figure


def _dense_track(rows: pd.DataFrame, frame_idx: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """Values of ``columns`` for one track at every processed frame (NaN where the face is missing)."""
    dense = np.full((len(frame_idx), len(columns)), np.nan)
    pos = np.searchsorted(frame_idx, rows["frame_idx"].to_numpy())
    dense[pos] = rows[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)
    return dense


def draw_timeline(
    table: pd.DataFrame,
    classes: Sequence[str],
    path: str | Path,
    *,
    title: str,
    summary: Mapping[str, Any] | None = None,
    has_va: bool = False,
) -> Path:
    """Render ``table`` (the frames table) to ``path`` as a PNG, atomically.

    The figure, axes, legend and tick labels of a layout (class list, number of panels, VA or
    not) are built once per process and reused, only the data, limits and title are swapped:
    a clip dataset draws thousands of near-identical timelines, and building the figure and
    laying out its fixed text cost about half of each one. Safe from several threads: each
    render takes a figure no other thread holds.
    """
    frames = table.drop_duplicates("frame_idx").sort_values("frame_idx")
    frame_idx = frames["frame_idx"].to_numpy()
    time_sec = frames["time_sec"].to_numpy(dtype=np.float64)
    face_rows = table[table["face_id"].notna()]
    track_sizes = face_rows["face_id"].value_counts()
    face_ids = [int(f) for f in track_sizes.index[:MAX_FACE_PANELS]]
    key = (tuple(classes), len(face_ids), bool(has_va and face_ids))
    template = _take_template(key)
    fig, axes = template.fig, template.axes
    colors = [CLASS_COLORS.get(c, "#333333") for c in classes]
    t_end = float(time_sec[-1]) if len(time_sec) else 1.0

    if not face_ids:
        _no_face_panel(axes[0], t_end)
    for panel, face_id in enumerate(face_ids):
        rows = face_rows[face_rows["face_id"] == face_id].sort_values("frame_idx")
        _probability_panel(axes[panel], rows, frame_idx, time_sec, classes, colors)
        axes[panel].set_ylabel(f"face {face_id}\nprobability")
    if has_va and face_ids:
        rows = face_rows[face_rows["face_id"] == face_ids[0]].sort_values("frame_idx")
        _va_panel(axes[-1], rows, frame_idx, time_sec)
        axes[-1].set_ylabel(f"face {face_ids[0]}\nvalence / arousal")
    axes[-1].set_xlim(0, max(t_end, 1e-3))
    template.title.set_text(_headline(title, summary))
    out = Path(path)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        # Emoji/CJK in a file name the bundled font lacks are drawn as boxes; no warning per glyph.
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        template.save_png(tmp)
    # Only a figure that rendered cleanly goes back for reuse (an exception above leaves it out).
    _give_back(key, template)
    return out


class _Template:
    """A figure laid out for one key: its axes and fixed text; ``clear`` drops one video's data."""

    def __init__(self, classes: Sequence[str], n_faces: int, va_panel: bool) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        n_panels = max(n_faces, 1) + (1 if va_panel else 0)
        height_in = 1.2 + 2.3 * n_panels
        self.fig = Figure(figsize=(FIG_WIDTH_IN, height_in), dpi=100)
        FigureCanvasAgg(self.fig)
        self.axes = self.fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
        self.axes[-1].set_xlabel("time (s)")
        colors = [CLASS_COLORS.get(c, "#333333") for c in classes]
        self.title, self.legend = _title_and_legend(self.fig, classes, colors, height_in)
        self.legend_pixels: tuple[slice, slice, np.ndarray] | None = None
        if REUSE_LEGEND_PIXELS:
            self._snapshot_legend()

    def _snapshot_legend(self) -> None:
        """Keep the legend's pixels (drawn alone on the white band above the panels) to paste, not redraw.

        The legend is a quarter of the drawing time and the same in every picture of this layout.
        Only done when nothing else can be drawn in that rectangle (the label strips stay below it;
        the title is checked at each render), so pasting gives exactly the pixels drawing would.
        """
        self.fig.canvas.draw()
        renderer = self.fig.canvas.get_renderer()
        box = self.legend.get_window_extent(renderer).padded(LEGEND_PAD_PX)
        height_px = int(round(self.fig.bbox.height))
        strip_top = max(ax.get_window_extent(renderer).y1 + 0.08 * ax.get_window_extent(renderer).height
                        for ax in self.axes)
        if box.y0 <= strip_top or box.x0 < 0 or box.x1 > self.fig.bbox.width or box.y1 > height_px:
            return
        rows = slice(height_px - int(np.ceil(box.y1)), height_px - int(np.floor(box.y0)))
        cols = slice(int(np.floor(box.x0)), int(np.ceil(box.x1)))
        self.legend_box = box
        self.legend_pixels = (rows, cols, np.asarray(self.fig.canvas.buffer_rgba())[rows, cols].copy())

    def save_png(self, path: Any) -> None:
        """Draw the figure to ``path`` (PNG), pasting the legend's pixels when the title stays clear of them."""
        paste = self.legend_pixels is not None and not self._title_reaches_legend()
        if not paste:
            # Fast zlib level: the plot is flat colours, so the file is barely larger.
            self.fig.savefig(path, format="png", pil_kwargs={"compress_level": 1})
            return
        from matplotlib.image import imsave

        rows, cols, pixels = self.legend_pixels
        self.legend.set_visible(False)
        try:
            self.fig.canvas.draw()
        finally:
            self.legend.set_visible(True)
        image = np.asarray(self.fig.canvas.buffer_rgba())
        image[rows, cols] = pixels
        imsave(path, image, format="png", origin="upper", dpi=self.fig.dpi, pil_kwargs={"compress_level": 1})

    def _title_reaches_legend(self) -> bool:
        title_box = self.title.get_window_extent(self.fig.canvas.get_renderer())
        return bool(self.title.get_text()) and title_box.y0 <= self.legend_box.y1 + 1

    def clear(self) -> None:
        """Remove every artist a render added, so the next video starts from the bare layout."""
        for ax in self.axes:
            for artist in [*ax.collections, *ax.patches, *ax.lines, *ax.texts]:
                artist.remove()
            if ax.get_legend() is not None:
                ax.get_legend().remove()


_TEMPLATES_LOCK = threading.Lock()
_FREE_TEMPLATES: dict[tuple, list[_Template]] = {}
REUSE_LEGEND_PIXELS = True  # tests switch it off to compare with matplotlib drawing the legend itself
LEGEND_PAD_PX = 3  # antialiased edges of the legend's patches and glyphs fall inside the pasted rectangle
MAX_TEMPLATE_KEYS = 16  # layouts kept per process (class list x panels x VA); a few in practice


def _take_template(key: tuple) -> _Template:
    with _TEMPLATES_LOCK:
        free = _FREE_TEMPLATES.get(key)
        if free:
            return free.pop()
    return _Template(key[0], key[1], key[2])


def _give_back(key: tuple, template: _Template) -> None:
    template.clear()
    with _TEMPLATES_LOCK:
        if key not in _FREE_TEMPLATES and len(_FREE_TEMPLATES) >= MAX_TEMPLATE_KEYS:
            _FREE_TEMPLATES.pop(next(iter(_FREE_TEMPLATES)))
        free = _FREE_TEMPLATES.setdefault(key, [])
        if len(free) < 2:  # one per writer thread in practice
            free.append(template)


def clear_figure_cache() -> None:
    """Forget the reusable figures (tests compare a reused figure with a fresh one)."""
    with _TEMPLATES_LOCK:
        _FREE_TEMPLATES.clear()


def _no_face_panel(ax: Any, t_end: float) -> None:
    ax.axvspan(0, max(t_end, 1e-3), color="#dddddd")
    ax.text(0.5, 0.5, "no face found in this video", ha="center", va="center", transform=ax.transAxes,
            fontsize=14)
    ax.set_yticks([])


def _probability_panel(ax: Any, rows: pd.DataFrame, frame_idx: np.ndarray, time_sec: np.ndarray,
                       classes: Sequence[str], colors: Sequence[str]) -> None:
    """One track's class probabilities as stacked bands, its gaps shaded, the winning label above."""
    probs = _dense_track(rows, frame_idx, [prob_column(c) for c in classes])
    missing = np.isnan(probs).any(axis=1)
    # A long video has more frames than the figure has pixel columns: draw every k-th
    # frame (the bands and strip cannot show more), so rendering cost stays flat.
    every = max(1, -(-len(time_sec) // MAX_DRAWN_POINTS))
    t_drawn, p_drawn, m_drawn = time_sec[::every], probs[::every], missing[::every]
    # Cumulative bands drawn only where the face is present, so a gap is a gap, not a ramp to zero.
    upper = np.cumsum(np.nan_to_num(p_drawn), axis=1)
    lower = np.hstack([np.zeros((len(upper), 1)), upper[:, :-1]])
    for j, color in enumerate(colors):
        ax.fill_between(t_drawn, lower[:, j], upper[:, j], where=~m_drawn, color=color, linewidth=0,
                        step="mid")
    _shade_missing(ax, time_sec, missing)
    # Winning-label strip above the probabilities: the one-glance answer.
    winner = np.where(missing, -1, np.argmax(np.nan_to_num(probs), axis=1))
    _label_strip(ax, time_sec, winner, colors)
    ax.set_ylim(0, 1)
    ax.margins(x=0)


def _va_panel(ax: Any, rows: pd.DataFrame, frame_idx: np.ndarray, time_sec: np.ndarray) -> None:
    va = _dense_track(rows, frame_idx, ["valence", "arousal"])
    ax.plot(time_sec, va[:, 0], color="#2ca02c", label="valence")
    ax.plot(time_sec, va[:, 1], color="#ff7f0e", label="arousal")
    ax.axhline(0, color="#666666", linewidth=0.8)
    ax.set_ylim(-1, 1)
    ax.legend(loc="upper right", fontsize=8)


def _title_and_legend(fig: Any, classes: Sequence[str], colors: Sequence[str],
                      height_in: float) -> tuple[Any, Any]:
    """Legend and margins of ``fig``; returns the (empty) title text that each render fills in, and the legend."""
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=name) for c, name in zip(colors, classes)]
    handles.append(Patch(facecolor="#dddddd", hatch="//", edgecolor="#bbbbbb", label="no face"))
    # Title and legend get a fixed band in inches, whatever the number of panels; fixed
    # margins, not tight_layout, which measures every text twice (a third of the drawing time).
    # parse_math=False: a file name like "a$_b_$c" is text, not TeX for matplotlib's math parser.
    title = fig.suptitle("", fontsize=13, y=1.0 - 0.08 / height_in, va="top", parse_math=False)
    legend = fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=9, frameon=False,
                        bbox_to_anchor=(0.5, 1.0 - 0.38 / height_in))
    fig.subplots_adjust(left=0.9 / FIG_WIDTH_IN, right=1.0 - 0.25 / FIG_WIDTH_IN, bottom=0.55 / height_in,
                        top=1.0 - 0.95 / height_in, hspace=0.25)
    return title, legend


def _shade_missing(ax: Any, time_sec: np.ndarray, missing: np.ndarray) -> None:
    """Grey hatched spans where the face is missing, so gaps are not read as 'zero probability'."""
    if not missing.any():
        return
    step = float(np.median(np.diff(time_sec))) if len(time_sec) > 1 else 0.04
    edges = np.flatnonzero(np.diff(np.concatenate([[0], missing.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        ax.axvspan(time_sec[start] - step / 2, time_sec[stop - 1] + step / 2, facecolor="#dddddd",
                   hatch="//", edgecolor="#bbbbbb", linewidth=0)


def _label_strip(ax: Any, time_sec: np.ndarray, winner: np.ndarray, colors: Sequence[str]) -> None:
    """Runs of the winning class as coloured bars just above the axes (white where no face)."""
    if not len(time_sec):
        return
    step = float(np.median(np.diff(time_sec))) if len(time_sec) > 1 else 0.04
    starts = np.flatnonzero(np.concatenate([[True], winner[1:] != winner[:-1]]))
    stops = np.append(starts[1:], len(winner))
    palette = list(colors) + ["#ffffff"]
    # Each run covers its frames' half-steps, clipped to the plotted time range like the bands.
    left = np.maximum(time_sec[starts] - step / 2, time_sec[0])
    right = np.minimum(time_sec[stops - 1] + step / 2, time_sec[-1])
    spans = list(zip(left.tolist(), np.maximum(right - left, 0.0).tolist()))
    ax.broken_barh(spans, (1.03, 0.045), facecolors=[palette[winner[a]] for a in starts], linewidth=0,
                   clip_on=False)


MAX_TITLE_CHARS = 90  # a 250-character file name would run off the figure


def _headline(title: str, summary: Mapping[str, Any] | None) -> str:
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1] + "\u2026"
    if not summary or summary.get("dominant_expression") is None:
        return title
    dom = summary["dominant_expression"]
    share = summary.get("time_share", {}).get(dom, 0.0)
    return f"{title} - mostly {dom} ({100 * share:.0f}% of face time)"
