"""Extraction on real faces: FER2013 test images laid out as an ABAW 2020 tree (crops + EXPR labels)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from affectseq.data.abaw import AbawDataset
from affectseq.data.frames import read_image_rgb
from affectseq.data.images import load_fer2013
from affectseq.features.encoders import create_encoder
from affectseq.features.extract import extract_features
from affectseq.features.frame_model import FrameModel
from affectseq.features.preprocess import preprocess_faces
from affectseq.features.store import FeatureStore

EXPR7 = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise"


def test_real_faces_round_trip(tmp_path, fer2013_path):
    faces = load_fer2013(fer2013_path, "test")
    n = 12
    root = tmp_path / "fer_as_abaw"
    for v, split in enumerate(("Training_Set", "Validation_Set")):
        rows = faces.expr[v * n:(v + 1) * n]
        folder = root / "annotations" / "EXPR_Set" / split
        folder.mkdir(parents=True)
        (folder / f"fer{v}.txt").write_text("\n".join([EXPR7, *map(str, rows)]) + "\n")
        crops = root / "cropped_aligned" / f"fer{v}"
        crops.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(faces.load_image(v * n + i)).save(crops / f"{i + 1:05d}.jpg", quality=95)

    torch.manual_seed(0)
    model = FrameModel(create_encoder("paper_cnn", framing="fer2013"), tasks=("expr",)).eval()
    report = extract_features(AbawDataset(root), model, tmp_path / "store", batch_size=8, num_workers=0,
                              device="cpu", framing="fer2013", progress=False)
    assert (report.n_written, report.n_frames_encoded, report.n_corrupt) == (2, 2 * n, 0)

    store = FeatureStore(tmp_path / "store")
    assert store.video_ids("expr", "train") == ["fer0"] and store.video_ids("expr", "validation") == ["fer1"]
    np.testing.assert_array_equal(store.labels("fer1")["expr"], faces.expr[n:2 * n])
    crops = np.stack([read_image_rgb(root / "cropped_aligned" / "fer1" / f"{i + 1:05d}.jpg") for i in range(n)])
    with torch.no_grad():
        want = model.forward_features(preprocess_faces(model.spec, crops, framing="fer2013")).numpy()
    got = store.features("fer1").astype(np.float32)
    np.testing.assert_allclose(got, want, rtol=3e-3, atol=3e-3)
    # Different real faces give different features (the encoder is not collapsing them).
    assert np.linalg.matrix_rank(got) > n // 2
