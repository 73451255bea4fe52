"""Class frequencies of a moderately sized synthetic set are skewed like Aff-Wild2's EXPR, read from the files alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectseq.config import load_config
from affectseq.data.synth import SynthConfig, generate
from affectseq.labels import EXPR_CLASSES_8


def test_expression_classes_are_skewed_with_rare_fear_disgust_other(tmp_path: Path) -> None:
    # Annotations only (nothing rendered) so 18,000 frames take seconds.
    cfg = load_config(SynthConfig, overrides=dict(n_videos=60, n_frames=300, seed=5, write_videos=False, write_crops=False))
    generate(tmp_path, cfg, workers=1, show_progress=False)
    counts = np.zeros(len(EXPR_CLASSES_8), dtype=np.int64)
    unannotated = 0
    files = sorted((tmp_path / "EXPR_Recognition_Challenge").rglob("*.txt"))
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0] == ",".join(EXPR_CLASSES_8)
        values = np.array(lines[1:], dtype=np.int64)
        unannotated += int((values == -1).sum())
        counts += np.bincount(values[values >= 0], minlength=len(EXPR_CLASSES_8))
    share = dict(zip(EXPR_CLASSES_8, counts / counts.sum()))
    order = [EXPR_CLASSES_8[k] for k in np.argsort(-counts)]
    assert set(order[:2]) == {"Neutral", "Happiness"}, share
    assert all(counts > 0), share  # every class occurs, Other included
    assert share["Fear"] < 0.04 and share["Disgust"] < 0.04 and share["Other"] < 0.06, share  # config: 1.5%, 1.5%, 3%
    assert counts.max() / counts.min() > 10
    assert 0 < unannotated < 0.15 * (counts.sum() + unannotated)
    assert len(files) < 60 * 1.2  # EXPR covers only part of the persons (task_coverage < 1)
