"""The one layout registry: a layout registered from outside the package works end to end without editing it.

The toy layout below lives only in this test: a folder with ``toy.json`` listing videos, their split and
one expression per video, read into per-frame ``AnnotatedVideo`` records. ``data inspect`` names it,
``data faces``/``extract`` open it straight from its videos, and ``train frames`` reads its crops.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from clip_fixtures import write_mp4

from affectseq.cli import main
from affectseq.data.abaw import AnnotatedVideo
from affectseq.data.registry import (Layout, detect_layout, get_layout, open_dataset, register_layout,
                                     registered_layouts, unregister_layout)
from affectseq.errors import ConfigError, InputError
from affectseq.labels import EXPR_CLASSES_7, expr_index

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def is_toy(path: Path) -> bool:
    return path.is_dir() and (path / "toy.json").is_file()


class ToyDataset:
    """Per-frame labels: every frame of a listed video carries the video's expression."""

    layout = "toy"
    label_level = "frame"
    has_crops = False
    expr_classes = EXPR_CLASSES_7

    def __init__(self, root: Path, strict: bool = False, scale: int | None = None):
        self.root, self.warnings, self.n_problems = Path(root), [], 0
        self._videos: dict[str, list[AnnotatedVideo]] = {}
        from affectseq.io.video import header_frame_count

        for row in json.loads((self.root / "toy.json").read_text())["videos"]:
            path = self.root / row["file"]
            n = header_frame_count(path)
            label = np.full(n, expr_index(row["expr"], 7), np.int64)
            self._videos.setdefault(row["split"], []).append(AnnotatedVideo(
                video_id=path.stem, task="EXPR", split=row["split"], annotation_path=self.root / "toy.json",
                source_video=path, crop_dir=None, n_frames=n, labels=label, label_valid=np.ones(n, bool),
                has_face=np.zeros(n, bool), expr_classes=EXPR_CLASSES_7))

    tasks = ("EXPR",)

    def splits(self, task: str) -> tuple[str, ...]:
        return tuple(self._videos)

    def videos(self, task: str, split: str) -> list[AnnotatedVideo]:
        return self._videos[split]


@pytest.fixture
def toy_layout():
    layout = register_layout(Layout("toy", detect=is_toy, open=ToyDataset, priority=5, summary="toy.json",
                                    options=("scale",)))
    yield layout
    unregister_layout("toy")


def _toy(root: Path, videos: dict[str, tuple[Path, str, str]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (source, split, expr) in videos.items():
        shutil.copyfile(source, root / name)
        rows.append({"file": name, "split": split, "expr": expr})
    (root / "toy.json").write_text(json.dumps({"videos": rows}))
    return root


def test_registered_layout_is_detected_inspected_and_planned(tmp_path: Path, toy_layout: Layout,
                                                             capsys: pytest.CaptureFixture) -> None:
    clip = write_mp4(tmp_path / "src.mp4", 5)
    root = _toy(tmp_path / "toy", {"a.mp4": (clip, "train", "happy"), "b.mp4": (clip, "validation", "sad")})
    assert detect_layout(root)[1] == "toy" and get_layout("toy") is toy_layout
    assert [l.name for l in registered_layouts()][0] == "toy"  # priority 5: tried first
    assert main(["data", "inspect", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layout"] == "toy" and report["tasks"]["EXPR"]["train"]["class_counts"]["Happiness"] == 5
    assert main(["data", "inspect", "--list-layouts"]) == 0
    assert "toy" in capsys.readouterr().out
    from affectseq.data.crop_export import plan_crop_jobs

    plan = plan_crop_jobs(root)
    assert plan.layout == "toy" and sorted(j.key for j in plan.jobs) == ["a", "b"]
    with pytest.raises(ConfigError, match="takes no option fold"):
        open_dataset(root, fold=2)
    with pytest.raises(ConfigError, match="already registered"):
        register_layout(Layout("toy", detect=is_toy, open=ToyDataset))


def test_unregistered_layout_is_unknown(tmp_path: Path) -> None:
    clip = write_mp4(tmp_path / "src.mp4", 3)
    root = _toy(tmp_path / "toy", {"a.mp4": (clip, "train", "happy")})
    with pytest.raises(InputError, match="unknown dataset layout"):
        detect_layout(root)
    with pytest.raises(ConfigError, match="unknown dataset layout 'toy'"):
        open_dataset(root, layout="toy")


@pytest.mark.slow
def test_registered_layout_end_to_end(tmp_path: Path, toy_layout: Layout, clips_dir: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    """extract straight from the toy layout's videos, and train frames on it (it crops them first)."""
    from affectseq.features.store import FeatureStore

    face = clips_dir / "single_face.mp4"
    root = _toy(tmp_path / "toy", {"a.mp4": (face, "train", "happy"), "b.mp4": (face, "validation", "sad")})
    store = tmp_path / "store"
    assert main(["extract", "--data", str(root), "--checkpoint", "default", "--out", str(store),
                 "--workers", "1", "--detect-every", "12"]) == 0
    features = FeatureStore(store)
    assert sorted(features.entries) == ["a", "b"] and features.expr_classes == EXPR_CLASSES_7
    labels_a = features.labels("a")
    assert (labels_a["expr"] == EXPR_CLASSES_7.index("Happiness")).all() and labels_a["has_face"].sum() > 36
    run = tmp_path / "run"
    assert main(["train", "frames", "--data", str(root), "--out", str(run), "--task", "expr",
                 "--encoder", "paper_cnn", "epochs=1", "batch_size=16", "limit_train=32", "limit_val=16",
                 "threads=1", "device=cpu", "test_split=null"]) == 0
    assert (tmp_path / "toy-faces" / "cropped_aligned" / "a").is_dir()
    assert (run / "checkpoint_best.safetensors").is_file()
