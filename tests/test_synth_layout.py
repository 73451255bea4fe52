"""The synthetic generator writes a complete ABAW 6 tree: layout, headers, row counts, gaps, two-person videos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from affectseq.config import load_config
from affectseq.data.synth import SynthConfig, SynthSummary, generate
from affectseq.data.synth.writer import SPLITS, TASK_DIRS, TASKS
from affectseq.labels import AU_NAMES_ABAW3, EXPR_CLASSES_8

HEADERS = {
    "VA": "valence,arousal",
    "EXPR": ",".join(EXPR_CLASSES_8),
    "AU": ",".join(AU_NAMES_ABAW3),
}
# Tiny but with every feature present: one two-person video, one validation video, gaps, unannotated rows.
TINY = dict(
    n_videos=4, n_frames=40, seed=7, two_person_fraction=0.3,
    nuisance={"absent_frac": 0.15, "absent_mean_sec": 0.3, "crop_dropout_prob": 0.05},
    annotation={"unannotated_frac": 0.15, "unannotated_mean_sec": 0.3},
)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthConfig, SynthSummary]:
    cfg = load_config(SynthConfig, overrides=TINY)
    out = tmp_path_factory.mktemp("synth") / "set"
    return out, cfg, generate(out, cfg, workers=1, show_progress=False)


def _gt(out: Path, video_id: str) -> dict[str, np.ndarray]:
    with np.load(out / "ground_truth" / f"{video_id}.npz") as data:
        return {k: data[k] for k in data.files}


def _rows(path: Path) -> tuple[str, list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0], [line.split(",") for line in lines[1:]]


def _annotation_files(out: Path) -> list[tuple[str, str, Path]]:
    return [(t, s, p) for t in TASKS for s in SPLITS for p in sorted((out / TASK_DIRS[t] / s).glob("*.txt"))]


def test_tree_headers_row_counts_and_saved_config(synth) -> None:
    out, cfg, summary = synth
    assert load_config(SynthConfig, out / "synth_config.yaml") == cfg
    assert summary.raw_videos == 4 and summary.annotated_videos == 5 and summary.skipped == 0
    files = _annotation_files(out)
    assert {t for t, _, _ in files} == set(TASKS) and {s for _, s, _ in files} == set(SPLITS)
    for task, split, path in files:
        header, rows = _rows(path)
        assert header == HEADERS[task], path
        gt = _gt(out, path.stem)
        assert len(rows) == len(gt["expr"]) == cfg.n_frames, path
        n_columns = 1 if task == "EXPR" else len(header.split(","))  # EXPR: one class index per row
        assert all(len(r) == n_columns for r in rows), path
        assert str(gt["split"]) == split
    assert sum(summary.videos_per_task[t][s] for t in TASKS for s in SPLITS) == len(files)
    assert len(list((out / "videos").glob("*.mp4"))) == 4
    assert not (out / ".synth_tmp").exists()


def test_label_values_match_ground_truth_and_masks(synth) -> None:
    out, cfg, _ = synth
    seen_unannotated = {t: 0 for t in TASKS}
    for task, _, path in _annotation_files(out):
        _, rows = _rows(path)
        gt = _gt(out, path.stem)
        annotated = gt["annotated"][TASKS.index(task)]
        for frame_idx, row in enumerate(rows):
            if not annotated[frame_idx]:
                seen_unannotated[task] += 1
                assert row == (["-5", "-5"] if task == "VA" else ["-1"] * len(row)), (path, frame_idx)
            elif task == "VA":
                va = np.array(row, dtype=float)
                assert np.all(np.abs(va) <= 1.0)
                np.testing.assert_allclose(va, gt["va"][frame_idx], atol=0.5 * 10**-cfg.annotation.va_decimals)
            elif task == "EXPR":
                assert int(row[0]) == gt["expr"][frame_idx] and 0 <= int(row[0]) < 8
            else:
                assert [int(v) for v in row] == gt["au"][frame_idx].tolist()
    assert all(seen_unannotated.values()), seen_unannotated


def test_crops_exist_exactly_where_ground_truth_has_a_face(synth) -> None:
    out, cfg, summary = synth
    gaps = 0
    for video_id in summary.split_of:
        gt = _gt(out, video_id)
        jpgs = sorted((out / "cropped_aligned" / video_id).glob("*.jpg"))
        # data row i (1-based) <-> crop i <-> frame_idx i - 1
        assert [int(p.stem) for p in jpgs] == (np.flatnonzero(gt["has_crop"]) + 1).tolist()
        assert not np.any(gt["has_crop"] & ~gt["present"])
        gaps += int((~gt["has_crop"]).sum())
        crop = cv2.imread(str(jpgs[0]))
        assert crop.shape == (cfg.crop_size, cfg.crop_size, 3)
        # The face fills the crop centre: it differs from the crop's corners (background).
        centre = crop[40:72, 40:72].reshape(-1, 3).mean(0)
        assert np.abs(centre - crop[:8, :8].reshape(-1, 3).mean(0)).sum() > 0 or crop.std() > 5
    assert gaps > 0
    assert summary.frames_with_crop == summary.frames - gaps


def test_two_person_video_has_left_and_right_sharing_one_raw_video(synth) -> None:
    out, cfg, summary = synth
    left = [v for v in summary.split_of if v.endswith("_left")]
    assert len(left) == 1
    base = left[0].removesuffix("_left")
    assert f"{base}_right" in summary.split_of and base not in summary.split_of
    assert (out / "videos" / f"{base}.mp4").is_file()
    assert not list((out / "videos").glob("*_left*")) and not (out / "cropped_aligned" / base).exists()
    for side in ("left", "right"):
        gt = _gt(out, f"{base}_{side}")
        assert str(gt["side"]) == side and str(gt["source_video"]) == f"videos/{base}.mp4"
        centre_x = (gt["box"][:, 0] + gt["box"][:, 2]) / 2
        visible = gt["present"]
        half = cfg.frame_width / 2
        assert np.all(centre_x[visible] < half) if side == "left" else np.all(centre_x[visible] > half)
        assert (out / "cropped_aligned" / f"{base}_{side}").is_dir()


def test_raw_video_decodes_to_one_frame_per_annotation_row(synth) -> None:
    from affectseq.io.video import VideoReader

    out, cfg, _ = synth
    path = sorted((out / "videos").glob("*.mp4"))[0]
    with VideoReader(path) as reader:
        assert (reader.info.width, reader.info.height) == (cfg.frame_width, cfg.frame_height)
        frames = [f.frame_idx for f in reader]
    assert frames == list(range(cfg.n_frames))


def test_abaw_adapter_reads_the_output_without_warnings(synth) -> None:
    from affectseq.data import abaw

    out, cfg, summary = synth
    dataset = abaw.AbawDataset(out)
    assert dataset.layout == "abaw6"
    n_videos = 0
    for task in TASKS:
        for split in dataset.splits(task):
            for video in dataset.videos(task, split):
                gt = _gt(out, video.video_id)
                np.testing.assert_array_equal(video.has_face, gt["has_crop"])
                np.testing.assert_array_equal(video.annotated, gt["annotated"][TASKS.index(task)])
                assert video.source_video is not None and video.source_video.name == str(gt["source_video"]).split("/")[1]
                n_videos += 1
    assert n_videos == sum(summary.videos_per_task[t][s] for t in TASKS for s in SPLITS)
    assert not dataset.warnings, dataset.warnings[:3]


def test_inspect_counts_agree_with_the_generator_summary(synth) -> None:
    from affectseq.data import inspect

    out, _, summary = synth
    report = inspect.inspect_dataset(out)
    counts = {c: sum(report["tasks"]["EXPR"][s]["class_counts"][c] for s in report["tasks"]["EXPR"]) for c in EXPR_CLASSES_8}
    assert counts == summary.expr_counts
