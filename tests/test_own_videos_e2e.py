"""End to end, as docs/own_videos.md tells a user: videos + CSVs -> data faces -> train frames -> extract."""

from __future__ import annotations

import pytest

from affectseq.cli import main
from affectseq.data.abaw import AbawDataset


@pytest.mark.slow
def test_own_videos_to_a_trained_frame_model(tmp_path) -> None:
    videos, crops, run = tmp_path / "videos", tmp_path / "crops", tmp_path / "run"
    assert main(["data", "synth", str(videos), "--layout", "video_csv", "--videos", "2", "--frames", "40",
                 "--workers", "1", "--no-progress"]) == 0
    assert main(["data", "faces", str(videos), "--out", str(crops), "--no-progress"]) == 0
    ds = AbawDataset(crops, strict=True)
    # Rendered cartoon faces: MTCNN finds some of them, which is all the pipeline needs here.
    assert all(len(ds.frame_set("VA", split)) > 0 for split in ds.splits("VA"))
    assert main(["train", "frames", "--data", str(crops), "--task", "va", "--out", str(run),
                 "encoder.name=resnet18", "encoder.input_size=48", "epochs=1", "batch_size=16", "threads=1",
                 "test_split=null"]) == 0
    assert (run / "history.csv").is_file()
    store = tmp_path / "store"
    assert main(["extract", "--data", str(crops), "--checkpoint", str(run), "--out", str(store)]) == 0
    assert (store / "manifest.json").is_file()
