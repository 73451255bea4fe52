"""The shipped default expression model: loads offline from the package and recognises FER2013 test faces."""

from __future__ import annotations

import numpy as np
import torch

from affectseq import metrics
from affectseq.data.images import load_fer2013
from affectseq.features.checkpoint import load_frame_model
from affectseq.features.preprocess import preprocess_faces
from affectseq.features.pretrained import default_model_path, model_card
from affectseq.labels import EXPR_CLASSES_7


def test_default_model_is_small_and_documented() -> None:
    path = default_model_path()
    assert path.suffix == ".safetensors" and path.stat().st_size <= 25 * 2**20
    card = model_card("default")
    assert "research" in card["terms"].lower()
    assert card["spec"]["framing"] == "fer2013"


def test_default_model_classifies_fer2013_test_faces(fer2013_path) -> None:
    model = load_frame_model("default")
    assert model.tasks == ("expr",) and model.expr_classes == EXPR_CLASSES_7
    test = load_fer2013(fer2013_path, "test")
    idx = np.sort(np.random.default_rng(0).choice(len(test), 400, replace=False))
    faces = np.repeat(test.images[idx][..., None], 3, axis=3)
    with torch.no_grad():
        probs = torch.softmax(model(preprocess_faces(model.spec, faces))["expr"], 1).numpy()
    y_true = test.expr[idx]
    y_pred = probs.argmax(1)
    majority = np.bincount(y_true).max() / len(y_true)  # ~0.25 (Happiness)
    assert metrics.accuracy(y_true, y_pred) > majority + 0.2
    assert metrics.macro_f1(y_true, y_pred, 7) > 0.35
    # More than the majority class is predicted: the model separates expressions.
    assert len(np.unique(y_pred)) >= 5
