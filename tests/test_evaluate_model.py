"""``affectseq evaluate-model``: a trained frame model scored on one split of a dataset, then reported.

Real inputs: FER2013 test faces written as a class-per-folder image tree, scored with the
shipped default model; the expected numbers are computed here directly from the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from affectseq import metrics
from affectseq.cli import main
from affectseq.data.images import load_fer2013
from affectseq.evaluation.predictions import load_predictions
from affectseq.models.factory import load_frame_model
from affectseq.features.preprocess import preprocess_faces
from affectseq.labels import EXPR_CLASSES_7

PER_CLASS = 6


@pytest.fixture(scope="module")
def fer_tree(tmp_path_factory, fer2013_path) -> tuple[Path, np.ndarray, np.ndarray]:
    """``root/test/<class>/*.png`` with PER_CLASS FER2013 test faces per class; (root, images, labels)."""
    test = load_fer2013(fer2013_path, "test")
    root = tmp_path_factory.mktemp("fer_tree")
    images, labels = [], []
    # Written in the order the tree is read back: class folders by name, files by name.
    for name in sorted(n.lower() for n in EXPR_CLASSES_7):
        cls = [n.lower() for n in EXPR_CLASSES_7].index(name)
        folder = root / "test" / name
        folder.mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(test.expr == cls)[:PER_CLASS]):
            cv2.imwrite(str(folder / f"{k:03d}.png"), test.images[i])
            images.append(test.images[i])
            labels.append(cls)
    return root, np.stack(images), np.array(labels)


def _direct_probs(images: np.ndarray, flip: bool = False) -> np.ndarray:
    """The model's own probabilities, re-expressed over the 7 classes of the image tree.

    The default is an 8-class FER+ model: scoring drops its Contempt column and renormalises
    (``align_expr_prob``, tested on its own in tests/test_data_ferplus.py)."""
    from affectseq.training.scoring import align_expr_prob

    model = load_frame_model("default")
    faces = np.repeat(images[..., None], 3, axis=3)
    with torch.no_grad():
        x = preprocess_faces(model.spec, faces)
        probs = torch.softmax(model(x)["expr"], 1)
        if flip:
            probs = (probs + torch.softmax(model(torch.flip(x, dims=[3]))["expr"], 1)) / 2
    return align_expr_prob(probs.numpy(), model.expr_classes, EXPR_CLASSES_7)


def _probs_in_fixture_order(preds, labels: np.ndarray) -> np.ndarray:
    assert np.array_equal(preds.expr_true, labels)
    return preds.expr_prob


def test_scores_split_like_the_model_itself(tmp_path: Path, fer_tree) -> None:
    root, images, labels = fer_tree
    out = tmp_path / "scored"
    assert main(["evaluate-model", "default", "--data", str(root), "--split", "test", "--out", str(out)]) == 0

    preds = load_predictions(out / "test_predictions.npz")
    probs = _probs_in_fixture_order(preds, labels)
    expected = _direct_probs(images)
    np.testing.assert_allclose(probs, expected, atol=1e-4)

    scored = json.loads((out / "metrics.json").read_text())
    assert scored["split"] == "test" and scored["expr"]["n_frames"] == len(labels)
    assert scored["expr"]["accuracy"] == pytest.approx(metrics.accuracy(labels, expected.argmax(1)))
    assert "Test: 42 frames" in (out / "report.md").read_text()
    assert (out / "report" / "confusion_normalized.png").stat().st_size > 0
    assert json.loads((out / "run.json").read_text())["config"]["split"] == "test"

    # The same predictions re-reported through `affectseq evaluate --split test` give the same metrics.
    again = tmp_path / "again"
    assert main(["evaluate", str(out), "--split", "test", "--out", str(again)]) == 0
    assert json.loads((again / "metrics.json").read_text())["expr"] == scored["expr"]


def test_flip_averaging(tmp_path: Path, fer_tree) -> None:
    root, images, labels = fer_tree
    out = tmp_path / "tta"
    assert main(["evaluate-model", "default", "--data", str(root), "--split", "test", "--tta-flip",
                 "--out", str(out)]) == 0
    probs = _probs_in_fixture_order(load_predictions(out / "test_predictions.npz"), labels)
    np.testing.assert_allclose(probs, _direct_probs(images, flip=True), atol=1e-4)
    assert np.abs(probs - _direct_probs(images)).max() > 1e-3  # the mirror image really changed something


def test_unknown_split_fails_cleanly(tmp_path: Path, fer_tree, capsys) -> None:
    root, _, _ = fer_tree
    out = tmp_path / "nothing"
    rc = main(["evaluate-model", "default", "--data", str(root), "--split", "validation", "--out", str(out)])
    assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "validation" in err[0] and "no such split" in err[0]
    assert not out.exists()  # nothing half-written
