"""timeline.png from a reused figure is the picture a freshly built figure draws, whatever came before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectseq.labels import EXPR_CLASSES_7
from affectseq.predict.table import FaceObservations, build_frames_table
from affectseq.predict import timeline
from affectseq.predict.timeline import clear_figure_cache, draw_timeline


def _video(n_frames: int, face_frames: np.ndarray, winner: np.ndarray, has_va: bool, seed: int) -> pd.DataFrame:
    """A frames table: one face track over ``face_frames``, class ``winner`` (per face frame) at 0.7."""
    rng = np.random.default_rng(seed)
    probs = np.full((len(face_frames), 7), 0.05, np.float32)
    probs[np.arange(len(face_frames)), winner] = 0.7
    obs = FaceObservations(
        frame_idx=face_frames, face_id=np.full(len(face_frames), 3, np.int64),
        boxes=np.tile([10, 20, 50, 70], (len(face_frames), 1)).astype(np.float32),
        det_score=np.full(len(face_frames), 0.9, np.float32), expr_prob=probs,
        va=rng.uniform(-1, 1, (len(face_frames), 2)).astype(np.float32) if has_va else None)
    return build_frames_table(np.arange(n_frames), np.arange(n_frames) / 25, obs, EXPR_CLASSES_7, has_va)


# Same layout (one face, no VA) twice with different lengths, gaps and labels; then VA; then no face.
VIDEOS = {
    "long_gap.mp4": (_video(72, np.r_[0:30, 45:72], np.r_[[4] * 30, [5] * 27], False, 0), False),
    "short.mp4": (_video(31, np.arange(31), np.r_[[0] * 10, [2] * 21], False, 1), False),
    "va.mp4": (_video(50, np.arange(5, 50), np.full(45, 6), True, 2), True),
    "no_face.mp4": (_video(40, np.arange(0), np.arange(0), False, 3), False),
}


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


def _fresh(table: pd.DataFrame, path: Path, title: str, has_va: bool = False) -> np.ndarray:
    """The picture as matplotlib draws it all: a new figure, the legend drawn, not pasted."""
    clear_figure_cache()
    saved = timeline.REUSE_LEGEND_PIXELS
    timeline.REUSE_LEGEND_PIXELS = False
    try:
        return _pixels(draw_timeline(table, EXPR_CLASSES_7, path, title=title, has_va=has_va))
    finally:
        timeline.REUSE_LEGEND_PIXELS = saved
        clear_figure_cache()


def test_reused_figure_draws_the_same_pixels_as_a_fresh_one(tmp_path: Path) -> None:
    fresh = {name: _fresh(table, tmp_path / f"fresh_{name}.png", name, has_va)
             for name, (table, has_va) in VIDEOS.items()}
    # Every video after another of the same layout (and the first again at the end): nothing may leak.
    order = ["long_gap.mp4", "short.mp4", "va.mp4", "no_face.mp4", "short.mp4", "long_gap.mp4", "va.mp4",
             "no_face.mp4"]
    for i, name in enumerate(order):
        table, has_va = VIDEOS[name]
        reused = _pixels(draw_timeline(table, EXPR_CLASSES_7, tmp_path / f"reused_{i}.png", title=name,
                                       has_va=has_va))
        assert reused.shape == fresh[name].shape, name
        assert np.array_equal(reused, fresh[name]), f"{name} (render {i}) differs from a fresh figure"
    # The pictures differ from one another, so the comparison above could fail.
    assert not np.array_equal(fresh["long_gap.mp4"], fresh["short.mp4"])


def test_legend_is_pasted_and_a_title_reaching_it_is_drawn_in_full(tmp_path: Path) -> None:
    """A title tall enough to reach the legend's rectangle makes matplotlib draw the legend itself."""
    table, _ = VIDEOS["short.mp4"]
    tall = "first line\nsecond line\nthird line"
    expected = {t: _fresh(table, tmp_path / f"fresh_{len(t)}.png", t) for t in ("short.mp4", tall)}
    for i, t in enumerate(["short.mp4", tall, "short.mp4"]):
        got = _pixels(draw_timeline(table, EXPR_CLASSES_7, tmp_path / f"r{i}.png", title=t))
        assert np.array_equal(got, expected[t]), t
    template = timeline._take_template((tuple(EXPR_CLASSES_7), 1, False))
    assert template.legend_pixels is not None  # the fast path was taken for the short title
    # Both paths were exercised above: the tall title reaches the legend, the short one does not.
    template.title.set_text(tall)
    assert template._title_reaches_legend()
    template.title.set_text("short.mp4")
    assert not template._title_reaches_legend()


def test_a_failed_render_does_not_leave_its_figure_for_reuse(tmp_path: Path, monkeypatch) -> None:
    table, _ = VIDEOS["short.mp4"]
    fresh = _fresh(table, tmp_path / "fresh.png", "short.mp4")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(timeline, "atomic_path", broken)
    with pytest.raises(RuntimeError):
        draw_timeline(VIDEOS["long_gap.mp4"][0], EXPR_CLASSES_7, tmp_path / "x.png", title="long_gap.mp4")
    monkeypatch.undo()
    again = _pixels(draw_timeline(table, EXPR_CLASSES_7, tmp_path / "again.png", title="short.mp4"))
    assert np.array_equal(again, fresh)


def test_threads_render_their_own_figures(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    names = ["long_gap.mp4", "short.mp4"]
    fresh = {n: _fresh(VIDEOS[n][0], tmp_path / f"f_{n}.png", n) for n in names}
    jobs = [names[i % 2] for i in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        paths = list(pool.map(lambda ij: draw_timeline(VIDEOS[ij[1]][0], EXPR_CLASSES_7, tmp_path / f"t{ij[0]}.png",
                                                       title=ij[1]), enumerate(jobs)))
    for path, name in zip(paths, jobs):
        assert np.array_equal(_pixels(path), fresh[name]), name
