"""``extract`` straight from raw videos gives the store that ``data faces`` + ``extract`` on the crops gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from affectseq.cli import main
from affectseq.data.abaw import AbawDataset
from affectseq.models.factory import save_frame_model
from affectseq.features.encoders import create_encoder
from affectseq.features.extract import extract_features
from affectseq.features.frame_model import FrameModel
from affectseq.features.store import FeatureStore
from affectseq.io.video import probe_video
from affectseq.labels import EXPR_CLASSES_8
from affectseq.prepare.video_crops import CropOptions, decode_crop, encode_crop
from affectseq.prepare.face_crops import has_raw_videos_only
from affectseq.prepare.video_features import extract_raw_videos


@pytest.fixture(scope="module")
def videos_and_crops(tmp_path_factory) -> tuple[Path, Path]:
    """A small synthetic video+CSV dataset (train + validation) and its ``data faces`` crop tree."""
    base = tmp_path_factory.mktemp("raw")
    videos, crops = base / "videos", base / "crops"
    assert main(["data", "synth", str(videos), "--layout", "video_csv", "--videos", "3", "--frames", "24",
                 "--workers", "1", "--no-progress"]) == 0
    assert main(["data", "faces", str(videos), "--out", str(crops), "--no-progress"]) == 0
    return videos, crops


@pytest.fixture(scope="module")
def frame_model() -> FrameModel:
    torch.manual_seed(0)
    return FrameModel(create_encoder("paper_cnn"), tasks=("expr",), expr_classes=EXPR_CLASSES_8).eval()


def assert_same_store(a: Path, b: Path) -> None:
    """Same videos, splits, labels and masks exactly; features equal within float16 rounding."""
    one, two = FeatureStore(a), FeatureStore(b)
    assert sorted(one.entries) == sorted(two.entries) and len(one.entries) > 0
    assert one.tasks == two.tasks and one.expr_classes == two.expr_classes
    for task in one.tasks:
        for split in one.splits(task):
            assert one.video_ids(task, split) == two.video_ids(task, split)
    for video_id in one.entries:
        assert one.entries[video_id].fps == two.entries[video_id].fps, video_id  # crops record their video's
        la, lb = one.labels(video_id), two.labels(video_id)
        assert la.dtype.names == lb.dtype.names
        for name in la.dtype.names:
            np.testing.assert_array_equal(la[name], lb[name], err_msg=f"{video_id}: {name}")
        fa, fb = one.features(video_id).astype(np.float32), two.features(video_id).astype(np.float32)
        # float16 keeps 11 significant bits: two float32 results that differ in their last bits may round
        # to neighbouring float16 values, one step (2**-10 relative) apart.
        np.testing.assert_allclose(fa, fb, rtol=2 ** -10, atol=1e-4, err_msg=video_id)


def test_raw_video_store_equals_crop_store(tmp_path, videos_and_crops, frame_model) -> None:
    videos, crops = videos_and_crops
    assert has_raw_videos_only(videos) and not has_raw_videos_only(crops)
    extract_features(AbawDataset(crops), frame_model, tmp_path / "from_crops", batch_size=16, num_workers=0,
                     device="cpu", progress=False)
    report = extract_raw_videos(videos, frame_model, tmp_path / "direct", batch_size=16, num_workers=0,
                                device="cpu", progress=False)
    assert report.n_written == report.n_videos == 3 and report.n_frames_encoded > 0
    assert_same_store(tmp_path / "from_crops", tmp_path / "direct")
    assert not any(p.suffix == ".jpg" for p in (tmp_path / "direct").rglob("*"))
    rates = {probe_video(p).fps for p in videos.rglob("*.mp4")}
    assert len(rates) == 1 and FeatureStore(tmp_path / "from_crops").fps() == rates.pop() > 0


def test_sequence_bundle_trained_on_crops_records_fps(tmp_path, videos_and_crops, frame_model) -> None:
    """The crop tree carries each video's rate (no raw video beside it): the bundle can resample by time."""
    from affectseq.modelfile.sequence import read_sequence_header

    videos, crops = videos_and_crops
    assert {v.fps for v in AbawDataset(crops).videos("EXPR", "train")} == {probe_video(next(videos.rglob("*.mp4"))).fps}
    extract_features(AbawDataset(crops), frame_model, tmp_path / "store", batch_size=16, num_workers=0,
                     device="cpu", progress=False)
    run = tmp_path / "gru"
    assert main(["train", "sequence", "--store", str(tmp_path / "store"), "--task", "expr", "--out", str(run),
                 "window=4", "model.hidden_sizes=[4]", "epochs=1", "batch_size=8", "threads=1", "device=cpu"]) == 0
    header = read_sequence_header(run / "checkpoint_best.safetensors")
    assert header["fps"] == FeatureStore(tmp_path / "store").fps() > 0
    assert header["window_sec"] == pytest.approx(4 / header["fps"])


def test_jpeg_round_trip_is_what_makes_them_equal(videos_and_crops) -> None:
    """The direct path decodes the JPEG bytes data faces writes: the pixels of the crop files, exactly."""
    from affectseq.data.frames import read_image_rgb

    _, crops = videos_and_crops
    path = next((crops / "cropped_aligned").rglob("*.jpg"))
    on_disk = read_image_rgb(path)
    assert np.array_equal(decode_crop(path.read_bytes()), on_disk)
    again = decode_crop(encode_crop(on_disk, CropOptions().jpeg_quality))
    assert not np.array_equal(again, on_disk)  # JPEG is lossy: skipping the round trip would change pixels


def test_resume_and_cli(tmp_path, videos_and_crops, frame_model, capsys) -> None:
    videos, _ = videos_and_crops
    checkpoint = tmp_path / "model.safetensors"
    save_frame_model(checkpoint, frame_model)
    args = ["extract", "--data", str(videos), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "store"),
            "--workers", "2", "--device", "cpu", "--batch-size", "16"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "running the face stage on the fly" in out and "3 videos written, 0 already done" in out
    assert main(args) == 0
    assert "0 videos written, 3 already done (of 3)" in capsys.readouterr().out
    store = FeatureStore(tmp_path / "store")
    assert store.incomplete() is None and len(store.entries) == 3


def test_abaw_tree_with_raw_videos_and_a_two_person_video(tmp_path, frame_model) -> None:
    """An Aff-Wild2-like tree without crops: ``_left``/``_right`` persons (whole-track side rule) too."""
    from affectseq.config import load_config
    from affectseq.data.synth import SynthConfig, generate
    from affectseq.prepare.face_crops import export_face_crops

    src = tmp_path / "affwild"
    cfg = load_config(SynthConfig, overrides={"n_videos": 2, "n_frames": 24, "seed": 3, "write_crops": False})
    generate(src, cfg, workers=1, show_progress=False)
    assert has_raw_videos_only(src)
    export_face_crops(src, tmp_path / "crops", progress=False)
    extract_features(AbawDataset(tmp_path / "crops"), frame_model, tmp_path / "from_crops", batch_size=16,
                     num_workers=0, device="cpu", progress=False)
    report = extract_raw_videos(src, frame_model, tmp_path / "direct", batch_size=16, num_workers=2, device="cpu",
                                progress=False)
    ids = sorted(FeatureStore(tmp_path / "direct").entries)
    assert report.n_written == len(ids) == 3 and any(i.endswith("_left") for i in ids)
    assert_same_store(tmp_path / "from_crops", tmp_path / "direct")


def test_a_broken_video_fails_alone_and_is_retried(tmp_path, frame_model) -> None:
    from affectseq.features.extract import ExtractIncomplete

    videos = tmp_path / "videos"
    assert main(["data", "synth", str(videos), "--layout", "video_csv", "--videos", "2", "--frames", "24",
                 "--workers", "1", "--no-progress"]) == 0
    clip = (Path(__file__).resolve().parents[1].parent / "shared" / "clips" / "WolfgangLanger_Pexels.mp4").read_bytes()
    broken = videos / "train" / "broken.mp4"
    broken.write_bytes(clip[:60_000])  # its index comes first: it opens, is planned, and breaks off
    (videos / "train" / "broken.csv").write_text("frame_idx,valence,arousal\n0,0.5,0.1\n1,0.5,0.1\n")
    with pytest.raises(ExtractIncomplete, match="broken") as failed:
        extract_raw_videos(videos, frame_model, tmp_path / "store", num_workers=2, device="cpu", progress=False)
    assert (failed.value.report.n_written, failed.value.report.failed) == (2, ["broken"])
    assert FeatureStore(tmp_path / "store").incomplete() is not None
    broken.write_bytes(clip)  # fixed: the whole file
    report = extract_raw_videos(videos, frame_model, tmp_path / "store", num_workers=2, device="cpu",
                                progress=False)
    assert (report.n_written, report.n_skipped) == (1, 2)
    assert FeatureStore(tmp_path / "store").incomplete() is None
