"""FaceCropStream yields exactly the faces and aligned crops of predict's own face stage."""

from __future__ import annotations

import numpy as np
import pytest

from affectseq.faces.stream import FaceCropStream, make_tracker
from affectseq.faces import align_faces
from affectseq.predict.pipeline import PredictOptions, predict_video_table
from tests.test_predict_helpers import brightness_bundle


def _predict_crops(video, detect_every: int) -> tuple[list[np.ndarray], object]:
    """predict's crops in order (recorded by wrapping its aligner) and its frames table."""
    recorded: list[np.ndarray] = []

    def recording_aligner(rgb, detections):
        crops = align_faces(rgb, detections)
        recorded.extend(crops)
        return crops

    options = PredictOptions(detect_every=detect_every, progress=False)
    result = predict_video_table(video, brightness_bundle(), options, aligner=recording_aligner)
    return recorded, result.table


@pytest.mark.parametrize("clip", ["single_face.mp4", "multi_face_pan.mp4"])
def test_stream_crops_equal_predict_face_stage(clips_dir, clip) -> None:
    import torch

    video = clips_dir / clip
    want_crops, table = _predict_crops(video, detect_every=8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # predict's face stage runs with one intra-op thread (PredictOptions.torch_threads)
    try:
        faces = list(FaceCropStream(video, detect_every=8))
    finally:
        torch.set_num_threads(threads)
    assert len(faces) == len(want_crops) > 0
    np.testing.assert_array_equal(np.stack([f.crop for f in faces]), np.stack(want_crops))
    rows = table.dropna(subset=["face_id"]).sort_values(["frame_idx", "face_id"])
    assert [(f.frame_idx, f.face_id) for f in faces] == list(zip(rows.frame_idx.astype(int), rows.face_id.astype(int)))
    boxes = np.array([f.box for f in faces])
    np.testing.assert_allclose(boxes, rows[["x1", "y1", "x2", "y2"]].to_numpy(float), atol=1e-3)
    assert all(f.crop.shape == (112, 112, 3) and f.crop.dtype == np.uint8 for f in faces)
    assert all(f.landmarks is not None and f.landmarks.shape == (5, 2) for f in faces)
    if clip == "multi_face_pan.mp4":
        assert len({f.face_id for f in faces}) >= 5


def test_frames_lists_every_frame_and_times_increase(clips_dir) -> None:
    stream = FaceCropStream(clips_dir / "single_face.mp4", make_tracker("mtcnn", detect_every=8, main_face_only=True))
    frames = list(stream.frames())
    assert [f.frame_idx for f in frames] == list(range(72))
    assert np.all(np.diff([f.time_sec for f in frames]) > 0)
    assert all(len(f.faces) <= 1 for f in frames) and sum(len(f.faces) for f in frames) > 60
