"""The shipped default expression model: loads offline from the package and recognises FER+ validation faces;
the previous default stays loadable by name."""

from __future__ import annotations

import numpy as np
import torch

from affectseq import metrics
from affectseq.data.ferplus import load_ferplus
from affectseq.models.factory import load_frame_model
from affectseq.features.preprocess import preprocess_faces
from affectseq.features.shipped import default_model_path, model_card
from affectseq.labels import EXPR_CLASSES_7, EXPR_CLASSES_FERPLUS


def test_default_model_is_small_and_documented() -> None:
    path = default_model_path()
    assert path.suffix == ".safetensors" and path.stat().st_size <= 25 * 2**20
    card = model_card("default")
    assert "research" in card["terms"].lower()
    assert card["spec"]["framing"] == "fer2013"


def test_default_model_classifies_ferplus_validation_faces(ferplus_path) -> None:
    model = load_frame_model("default")
    assert model.tasks == ("expr",) and model.expr_classes == EXPR_CLASSES_FERPLUS
    validation = load_ferplus(ferplus_path, "validation")
    idx = np.sort(np.random.default_rng(0).choice(len(validation), 400, replace=False))
    faces = np.repeat(validation.images[idx][..., None], 3, axis=3)
    with torch.no_grad():
        probs = torch.softmax(model(preprocess_faces(model.spec, faces))["expr"], 1).numpy()
    y_true = validation.expr[idx]
    y_pred = probs.argmax(1)
    majority = np.bincount(y_true).max() / len(y_true)  # ~0.37 (Neutral)
    assert metrics.accuracy(y_true, y_pred) > majority + 0.3
    assert metrics.macro_f1(y_true, y_pred, 8) > 0.5
    # More than the majority class is predicted: the model separates expressions.
    assert len(np.unique(y_pred)) >= 6


def test_previous_default_loads_by_name() -> None:
    model = load_frame_model("fer2013-v1")
    assert model.expr_classes == EXPR_CLASSES_7
    assert model_card("fer2013-v1")["name"] == "fer2013-v1"
