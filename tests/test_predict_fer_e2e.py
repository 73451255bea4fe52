"""End-to-end check of the default model on video: FER2013 test faces pasted into frames, then
detection -> alignment -> prediction, against classifying the same 48x48 faces directly.

Targets (issue 4): faces found in >= 90% of the frames, accuracy within 5 points of the direct one.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from affectseq.predict.model import load_model
from affectseq.predict.pipeline import PredictOptions, predict_video_table

from test_predict_helpers import write_video

N_FACES = 240
FACE_PX = 168  # upscaled face size in the frame (FER2013 faces are 48x48)
FRAME_W, FRAME_H = 480, 320


def _paste_faces(faces: np.ndarray, background: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """One frame per face: the gray face upscaled (bicubic) and pasted at a random spot of the background."""
    rng = np.random.default_rng(seed)
    frames = []
    for face in faces:
        big = cv2.resize(face, (FACE_PX, FACE_PX), interpolation=cv2.INTER_CUBIC)
        frame = background.copy()
        x = int(rng.integers(20, FRAME_W - FACE_PX - 20))
        y = int(rng.integers(10, FRAME_H - FACE_PX - 10))
        frame[y:y + FACE_PX, x:x + FACE_PX] = big
        frames.append(frame)
    return frames


@pytest.mark.slow
def test_fer_faces_in_video_match_direct_classification(tmp_path: Path, fer2013_path: Path,
                                                         clips_dir: Path) -> None:
    import torch

    from affectseq.data.images import load_fer2013
    from affectseq.features.checkpoint import load_frame_model
    from affectseq.features.preprocess import preprocess_faces

    test = load_fer2013(fer2013_path, "test")
    rng = np.random.default_rng(0)
    candidates = rng.permutation(len(test))
    picked = [i for i in candidates[:N_FACES * 2] if test.load_image(int(i)).std() > 8][:N_FACES]  # skip blanks
    faces = np.stack([test.load_image(int(i)) for i in picked])  # (N, 48, 48, 3) uint8
    labels = test.expr[picked]

    # Direct: the 48x48 faces as the model was trained on them.
    model = load_frame_model("default")
    with torch.inference_mode():
        direct = model(preprocess_faces(model.spec, faces, framing="fer2013"))["expr"].argmax(1).numpy()
    direct_acc = float((direct == labels).mean())

    # Video: a no-face photo as background, one pasted face per frame.
    background = cv2.cvtColor(cv2.imread(str(clips_dir / "free-mountain-vector-01.jpg")), cv2.COLOR_BGR2RGB)
    background = cv2.resize(background, (FRAME_W, FRAME_H), interpolation=cv2.INTER_AREA)
    video = write_video(tmp_path / "fer_faces.mp4", _paste_faces(faces, background), fps=10)
    bundle = load_model("default", device="cpu", smoothing_sec=0)  # one face per frame: no smoothing across faces
    table = predict_video_table(video, bundle, PredictOptions(detect_every=1, progress=False)).table

    per_frame = table.dropna(subset=["label"]).sort_values("det_score", ascending=False)
    per_frame = per_frame.drop_duplicates("frame_idx").set_index("frame_idx")  # the best face of each frame
    found = per_frame.index.to_numpy()
    found_rate = len(found) / N_FACES
    classes = list(bundle.info.classes)
    video_pred = per_frame["label"].map(classes.index).to_numpy()
    video_acc_found = float((video_pred == labels[found]).mean())
    direct_acc_found = float((direct[found] == labels[found]).mean())
    print(f"faces found {found_rate:.3f}; accuracy direct {direct_acc:.3f} (on found {direct_acc_found:.3f}), "
          f"video {video_acc_found:.3f}; agreement {float((video_pred == direct[found]).mean()):.3f}")
    assert found_rate >= 0.90
    assert abs(video_acc_found - direct_acc_found) <= 0.05
    assert direct_acc > 0.4  # a trained model, far above the 1/7 of guessing
