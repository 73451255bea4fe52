"""predict's worker threads: full detections run ahead of tracking in their own thread, change no output,
and every thread ends with the video, also when a stage fails."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from affectseq.faces import FaceTracker, create_detector
from affectseq.predict.model import load_model
from affectseq.predict.pipeline import PredictOptions, predict_video_table

from test_predict_helpers import save_tiny_frame_model

OPTIONS = PredictOptions(progress=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):
    return load_model(save_tiny_frame_model(tmp_path_factory.mktemp("m") / "tiny.safetensors"), device="cpu")


class ThreadRecordingDetector:
    """MTCNN that records which thread ran each full detection; ``fail_at`` raises on that call."""

    def __init__(self, fail_at: int | None = None):
        self.inner = create_detector("mtcnn")
        self.threads: list[str] = []
        self.fail_at = fail_at

    def detect(self, rgb):
        self.threads.append(threading.current_thread().name)
        if self.fail_at is not None and len(self.threads) > self.fail_at:
            raise RuntimeError("detector broke")
        return self.inner.detect(rgb)

    def refine(self, *args, **kwargs):
        return self.inner.refine(*args, **kwargs)


class UpdateOnly:
    """A face source without ``planner``: the tracker plans for itself on the calling thread."""

    def __init__(self, tracker: FaceTracker):
        self.tracker = tracker

    def update(self, frame_idx, rgb):
        return self.tracker.update(frame_idx, rgb)


def _affectseq_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("affectseq-")]


def test_detections_run_ahead_in_a_worker_and_change_nothing(clips_dir: Path, bundle) -> None:
    video = clips_dir / "single_face.mp4"
    ahead = ThreadRecordingDetector()
    planned = predict_video_table(video, bundle, OPTIONS, face_source=FaceTracker(ahead))
    inline = ThreadRecordingDetector()
    alone = predict_video_table(video, bundle, OPTIONS, face_source=UpdateOnly(FaceTracker(inline)))
    pd.testing.assert_frame_equal(planned.table, alone.table)
    assert set(ahead.threads) == {"affectseq-detect"} and set(inline.threads) == {threading.current_thread().name}
    assert len(ahead.threads) == len(inline.threads) >= 72 // 8
    assert planned.timings["detect_ahead_cpu_sec"] > 0
    assert not _affectseq_threads()


def test_a_failing_detection_thread_stops_the_video_and_every_thread(clips_dir: Path, bundle) -> None:
    source = FaceTracker(ThreadRecordingDetector(fail_at=2))
    with pytest.raises(RuntimeError, match="detector broke"):
        predict_video_table(clips_dir / "single_face.mp4", bundle, OPTIONS, face_source=source)
    assert not _affectseq_threads()
