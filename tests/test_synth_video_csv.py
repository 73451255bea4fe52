"""``data synth --layout video_csv`` writes users' video+CSV layout, with the labels of the ABAW 6 layout."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from affectseq.cli import main
from affectseq.config import load_config
from affectseq.data.abaw import AbawDataset
from affectseq.data.inspect import detect_layout
from affectseq.data.synth import SynthConfig, generate
from affectseq.data.video_csv import VideoCsvDataset
from affectseq.errors import ConfigError


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[Path, Path]:
    """The same config written in both layouts (the video_csv one through the CLI)."""
    base = tmp_path_factory.mktemp("synth")
    csv_root = base / "csv"
    args = ["data", "synth", str(csv_root), "--layout", "video_csv", "--videos", "3", "--frames", "30",
            "--workers", "1", "--no-progress"]
    assert main(args) == 0
    cfg = load_config(SynthConfig, csv_root / "synth_config.yaml")
    assert cfg.layout == "video_csv" and cfg.two_person_fraction == 0
    abaw_root = base / "abaw"
    generate(abaw_root, dataclasses.replace(cfg, layout="abaw6"), workers=1, show_progress=False)
    return csv_root, abaw_root


def test_layout_on_disk(both) -> None:
    csv_root, _ = both
    assert detect_layout(csv_root) == "video_csv"
    videos = sorted(p.relative_to(csv_root).as_posix() for p in csv_root.rglob("*.mp4"))
    csvs = sorted(p.relative_to(csv_root).as_posix() for p in csv_root.rglob("*.csv"))
    assert len(videos) == 3 and [v.removesuffix(".mp4") for v in videos] == [c.removesuffix(".csv") for c in csvs]
    assert {v.split("/")[0] for v in videos} == {"train", "validation"}
    assert not (csv_root / "cropped_aligned").exists() and not (csv_root / ".synth_tmp").exists()


def test_video_csv_labels_equal_the_abaw_layout(both) -> None:
    csv_root, abaw_root = both
    ours, abaw = VideoCsvDataset(csv_root, strict=True), AbawDataset(abaw_root, strict=True)
    assert ours.tasks == abaw.tasks
    for task in abaw.tasks:
        got = {v.video_id: v for split in ours.splits(task) for v in ours.videos(task, split)}
        want = {v.video_id: v for split in abaw.splits(task) for v in abaw.videos(task, split)}
        assert got.keys() == want.keys() and got
        for vid, video in want.items():
            assert got[vid].n_frames == video.n_frames
            np.testing.assert_array_equal(got[vid].label_valid, video.label_valid)
            np.testing.assert_array_equal(got[vid].labels, video.labels)


def test_rerun_skips_and_two_persons_are_refused(both) -> None:
    csv_root, _ = both
    assert main(["data", "synth", str(csv_root), "--layout", "video_csv", "--videos", "3", "--frames", "30",
                 "--workers", "1", "--no-progress"]) == 0
    with pytest.raises(ConfigError, match="two_person_fraction=0"):
        SynthConfig(layout="video_csv", two_person_fraction=0.2)
    with pytest.raises(ConfigError, match="layout must be one of"):
        SynthConfig(layout="abaw5")
