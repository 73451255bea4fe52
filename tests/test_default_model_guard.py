"""Guards on the shipped default model: its weights still reach the validation accuracy its card records,
and the card's numbers are the ones embedded in the weights (docs/model_card.md).

If either fails, the weights or the card changed without the other: re-run the commands the card names.
"""

from __future__ import annotations

import numpy as np

from affectseq import metrics
from affectseq.data.ferplus import load_ferplus
from affectseq.features.shipped import default_model_path, model_card
from affectseq.modelfile.frame import read_frame_model_header
from affectseq.models.factory import load_frame_model
from affectseq.labels import EXPR_CLASSES_FERPLUS
from affectseq.training.scoring import make_eval_loader, predict_frames
from affectseq.utils.hashing import sha256_file


def test_card_numbers_are_the_weights_own():
    card = model_card("default")
    header = read_frame_model_header(default_model_path())
    assert card["sha256"] == sha256_file(default_model_path())
    assert card["expr_classes"] == header["expr_classes"] == list(EXPR_CLASSES_FERPLUS)
    # The selection metrics the training run wrote into the checkpoint are the card's, unrounded.
    assert card["val_metrics"] == header["meta"]["val_metrics"]
    assert card["selected_epoch"] == header["meta"]["epoch"]
    one_pass = card["validation_one_pass"]
    assert one_pass["data"].endswith("ferplus.npz") and one_pass["split"] == "validation"


def test_shipped_weights_reach_the_cards_validation_accuracy(ferplus_path):
    card = model_card("default")["validation_one_pass"]
    model = load_frame_model("default")
    validation = load_ferplus(ferplus_path, "validation")
    every = np.arange(len(validation))
    assert len(every) == card["n"]
    pred = predict_frames(model, make_eval_loader(validation, every, model, batch_size=512), with_loss=False)
    accuracy = metrics.accuracy(pred["expr_true"], pred["expr_prob"].argmax(1))
    # Within 1 point: BLAS and ONNX-free torch CPU kernels differ in their last bits across machines.
    assert abs(accuracy - card["accuracy"]) <= 0.01, (accuracy, card["accuracy"])
