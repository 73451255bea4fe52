"""``train frames --data`` on raw videos: the face stage is run once, then reused (and said which)."""

from __future__ import annotations

import pytest

from affectseq.cli import main
from affectseq.errors import InputError
from affectseq.prepare.face_crops import crops_for_training, default_crops_dir
from affectseq.training.frame_data import resolve_frame_data


def test_face_stage_runs_then_is_reused(tmp_path) -> None:
    videos = tmp_path / "clips"
    assert main(["data", "synth", str(videos), "--layout", "video_csv", "--videos", "2", "--frames", "16",
                 "--workers", "1", "--no-progress"]) == 0
    with pytest.raises(InputError, match="data faces"):  # the training API alone does not crop
        resolve_frame_data(videos, "va")

    data, said = crops_for_training(videos)
    assert data == default_crops_dir(videos) == tmp_path / "clips-faces"
    assert "ran the face stage" in said and "2 videos cropped" in said
    assert (data / "cropped_aligned").is_dir()
    stamp = sorted(p.stat().st_mtime_ns for p in (data / "cropped_aligned").rglob("*.jpg"))

    again, said = crops_for_training(videos)
    assert again == data and "reusing the face crops" in said and "2 videos cropped earlier" in said
    assert sorted(p.stat().st_mtime_ns for p in (data / "cropped_aligned").rglob("*.jpg")) == stamp

    assert crops_for_training(data) == (data, "")  # a crop tree is trained on as it is
