"""End-to-end check of the default model on video: FER+ *validation* faces pasted into frames, then
detection -> alignment -> prediction, against classifying the same 48x48 faces directly.

Validation, not test: the video framing box is a design choice, made and checked on faces the
model may be chosen on (docs/model_card.md, "How the default model is chosen").
Targets (issue 4): faces found in >= 90% of the frames, accuracy within 5 points of the direct one.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from affectseq.experiments.through_video import faces_through_video

N_FACES = 240


@pytest.mark.slow
def test_fer_faces_in_video_match_direct_classification(tmp_path: Path, ferplus_path: Path,
                                                         clips_dir: Path) -> None:
    from affectseq.data.ferplus import load_ferplus

    validation = load_ferplus(ferplus_path, "validation")
    rng = np.random.default_rng(0)
    candidates = rng.permutation(len(validation))
    picked = [int(i) for i in candidates[:N_FACES * 2] if validation.load_image(int(i)).std() > 8][:N_FACES]
    faces = np.stack([validation.load_image(i) for i in picked])  # (N, 48, 48, 3) uint8
    labels = validation.expr[picked]
    background = cv2.cvtColor(cv2.imread(str(clips_dir / "free-mountain-vector-01.jpg")), cv2.COLOR_BGR2RGB)

    result = faces_through_video("default", faces, labels, background, tmp_path)
    print(result.line())
    assert result.found_rate >= 0.90
    assert abs(result.video_accuracy_found - result.direct_accuracy_found) <= 0.05
    assert result.direct_accuracy > 0.6  # a trained model, far above the 1/8 of guessing
