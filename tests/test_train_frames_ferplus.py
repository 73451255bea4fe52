"""FER+ through the commands: train frames (vote targets, warm start), evaluate-model protocols, data inspect."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from affectseq import labels
from affectseq.cli import main
from affectseq.errors import ConfigError
from affectseq.models.factory import load_frame_model
from affectseq.features.encoders import create_encoder
from affectseq.features.frame_model import FrameModel
from affectseq.training.warm_start import warm_start


def test_warm_start_copies_encoder_and_shared_head_rows():
    donor = load_frame_model("fer2013-v1")
    spec = donor.spec
    encoder = create_encoder(spec.name, input_size=spec.input_size, grayscale=spec.grayscale, framing=spec.framing)
    model = FrameModel(encoder, ("expr",), expr_classes=labels.EXPR_CLASSES_FERPLUS)
    fresh_contempt = model.heads["expr"].weight[7].detach().clone()
    note = warm_start(model, "fer2013-v1")
    assert "7 head rows" in note
    for (name, a), b in zip(model.encoder.state_dict().items(), donor.encoder.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(model.heads["expr"].weight[:7], donor.heads["expr"].weight)
    assert torch.equal(model.heads["expr"].bias[:7], donor.heads["expr"].bias)
    assert torch.equal(model.heads["expr"].weight[7], fresh_contempt)  # the new class starts from scratch
    other = FrameModel(create_encoder(spec.name, input_size=64, grayscale=True, framing=spec.framing), ("expr",))
    with pytest.raises(ConfigError, match="input_size 80 vs 64"):
        warm_start(other, "fer2013-v1")


def test_train_frames_on_ferplus_votes_then_evaluate_protocols(ferplus_path, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["train", "frames", "--data", str(ferplus_path), "--out", str(run),
               "encoder.name=torchvision/mobilenet_v2", "encoder.input_size=80", "encoder.grayscale=true",
               "init_from=fer2013-v1", "expr_targets=votes", "epochs=1", "limit_train=192", "limit_val=128",
               "test_split=null", "threads=1", "eval_batch_size=128"])
    assert rc == 0
    model = load_frame_model(run / "checkpoint_best.safetensors")
    assert model.expr_classes == labels.EXPR_CLASSES_FERPLUS
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 2
    capsys.readouterr()

    # 8-class FER+ model on the 7-class FER+ protocol: contempt frames and the class are left out.
    out7 = tmp_path / "eval7"
    assert main(["evaluate-model", str(run / "checkpoint_best.safetensors"), "--data", str(ferplus_path),
                 "--split", "validation", "--drop-class", "Contempt", "--bootstrap", "50", "--threads", "1",
                 "--out", str(out7)]) == 0
    printed = capsys.readouterr().out
    assert "left out 26 frames" in printed and "95% CI" in printed
    metrics7 = json.loads((out7 / "metrics.json").read_text())
    assert metrics7["expr"]["num_classes"] == 7 and metrics7["n_frames"] == 3555 - 26
    lo, hi = metrics7["expr"]["ci95"]["accuracy"]
    assert lo <= metrics7["expr"]["accuracy"] <= hi
    saved = np.load(out7 / "val_predictions.npz")
    assert tuple(saved["expr_classes"]) == labels.EXPR_CLASSES_7
    np.testing.assert_allclose(saved["expr_prob"].sum(1), 1.0, rtol=1e-5)

    # The same model on FER2013's original labels (7 classes): every frame kept, Contempt's share dropped.
    out_fer = tmp_path / "eval_fer"
    assert main(["evaluate-model", str(run / "checkpoint_best.safetensors"), "--data",
                 str(ferplus_path.parent / "fer2013.npz"), "--split", "validation", "--threads", "1",
                 "--out", str(out_fer)]) == 0
    assert json.loads((out_fer / "metrics.json").read_text())["n_frames"] == 3589


def test_drop_train_duplicates_on_real_fer2013(fer2013_path, tmp_path, capsys):
    out = tmp_path / "dedup"
    assert main(["evaluate-model", "default", "--data", str(fer2013_path), "--split", "validation",
                 "--drop-train-duplicates", "--threads", "1", "--out", str(out)]) == 0
    left_out = int(capsys.readouterr().out.split("left out ")[1].split()[0])
    # FER2013 is known to hold cross-split byte-identical copies (../shared/README.md): some, not most.
    assert 50 < left_out < 600
    assert json.loads((out / "metrics.json").read_text())["n_frames"] == 3589 - left_out


def test_data_inspect_reads_ferplus(ferplus_path, capsys):
    assert main(["data", "inspect", str(ferplus_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    test = report["tasks"]["EXPR"]["test"]
    assert test["frames"] == 3573 and test["annotated_frames"] == 3545
    assert test["unknown_or_nf_majority"] == 28
    assert 0.5 < test["mean_majority_vote_share"] < 1.0


def test_resume_does_not_need_the_warm_start_donor(ferplus_path, tmp_path):
    """The donor initialises a fresh run only; a resumed run restores its own checkpoint (the donor may be gone)."""
    import shutil

    from affectseq.features.shipped import shipped_model_path

    donor = tmp_path / "donor.safetensors"
    shutil.copyfile(shipped_model_path("fer2013-v1"), donor)
    run = tmp_path / "run"
    common = ["encoder.name=torchvision/mobilenet_v2", "encoder.input_size=80", "encoder.grayscale=true",
              "limit_train=64", "limit_val=64", "test_split=null", "threads=1", "eval_batch_size=64"]
    assert main(["train", "frames", "--data", str(ferplus_path), "--out", str(run), f"init_from={donor}",
                 "epochs=1", *common]) == 0
    donor.unlink()
    assert main(["train", "frames", "--data", str(ferplus_path), "--out", str(run), "--resume", "epochs=2"]) == 0
    assert len((run / "history.csv").read_text().splitlines()) == 3
