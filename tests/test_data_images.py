"""FER2013 loader, class-per-folder image sets and the FrameSet contract."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affectseq import labels
from affectseq.data.frames import ArrayFrameSet, FileFrameSet, FrameSet, class_counts
from affectseq.data.images import (
    fer2013_label_arrays,
    image_folder_splits,
    is_fer2013_npz,
    load_fer2013,
    load_image_folder,
    scan_image_folder,
)
from affectseq.errors import InputError


@pytest.fixture(scope="module")
def fer_train(fer2013_path: Path) -> ArrayFrameSet:
    return load_fer2013(fer2013_path, "train")


def test_fer2013_train_counts_match_release(fer_train: ArrayFrameSet, fer2013_path: Path) -> None:
    assert isinstance(fer_train, FrameSet)
    assert len(fer_train) == 28709
    counts = class_counts(fer_train.expr, fer_train.expr_classes)
    assert counts["Disgust"] == 436
    assert counts["Happiness"] == 7215
    # Every class count agrees with the JSON written beside the archive.
    meta = json.loads(fer2013_path.with_suffix(".json").read_text())
    expected = {k: v for k, v in meta["counts"]["train"].items() if k != "total"}
    assert counts == expected
    assert fer_train.expr_classes == labels.EXPR_CLASSES_7
    assert fer_train.expr.dtype == np.int64 and fer_train.va is None and fer_train.au is None


def test_fer2013_splits_partition_the_archive(fer2013_path: Path) -> None:
    sizes = {s: len(load_fer2013(fer2013_path, s)) for s in ("validation", "test")}
    assert sizes == {"validation": 3589, "test": 3589}
    lab, split = fer2013_label_arrays(fer2013_path)
    assert len(lab) == 28709 + 3589 + 3589 and set(np.unique(split)) == {0, 1, 2}


def test_fer2013_image_is_gray_repeated_rgb(fer_train: ArrayFrameSet) -> None:
    img = fer_train.load_image(5)
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    assert np.array_equal(img[:, :, 0], fer_train.images[5]) and np.array_equal(img[:, :, 0], img[:, :, 2])
    assert img.std() > 0  # a real face, not a blank


def test_fer2013_frame_set_pickles_with_uint8_images(fer2013_path: Path) -> None:
    small = load_fer2013(fer2013_path, "validation")
    restored = pickle.loads(pickle.dumps(small))
    assert restored.images.dtype == np.uint8 and len(restored) == len(small)
    assert np.array_equal(restored.load_image(10), small.load_image(10))
    # The pickle is the uint8 payload plus labels, not a float copy.
    assert len(pickle.dumps(small)) < small.images.nbytes * 1.5 + 200_000


def test_fer2013_bad_inputs(tmp_path: Path, fer2013_path: Path) -> None:
    with pytest.raises(ValueError, match="split"):
        load_fer2013(fer2013_path, "val")
    with pytest.raises(InputError, match="not found"):
        load_fer2013(tmp_path / "missing.npz", "train")
    bogus = tmp_path / "bogus.npz"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="npz"):
        load_fer2013(bogus, "train")
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(InputError, match="missing arrays"):
        load_fer2013(other, "train")
    assert is_fer2013_npz(fer2013_path) and not is_fer2013_npz(other) and not is_fer2013_npz(bogus)


def _write_images(folder: Path, n: int, gray: bool = False, size: int = 20) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(folder.name) + n)
    for i in range(n):
        shape = (size, size) if gray else (size, size, 3)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(folder / f"img_{i:03d}.png")


def test_affectnet_style_named_folders_contempt_to_other_or_dropped(tmp_path: Path) -> None:
    root = tmp_path / "affectnet"
    for name, n in {"anger": 3, "happy": 5, "Neutral": 2, "contempt": 4, "not_a_class": 1}.items():
        _write_images(root / name, n)
    fs8 = load_image_folder(root, num_classes=8)
    assert len(fs8) == 14 and fs8.expr_classes == labels.EXPR_CLASSES_8
    assert class_counts(fs8.expr, fs8.expr_classes) == {
        "Neutral": 2, "Anger": 3, "Disgust": 0, "Fear": 0, "Happiness": 5, "Sadness": 0, "Surprise": 0, "Other": 4}
    scan7 = scan_image_folder(root, num_classes=7)
    assert len(scan7.frame_set) == 10
    assert scan7.dropped == {"contempt": 4, "not_a_class": 1}
    assert any("contempt" in w for w in scan7.warnings)
    assert scan7.frame_set.expr.max() < 7


def test_rafdb_numbered_folders_and_gray_images(tmp_path: Path) -> None:
    root = tmp_path / "rafdb" / "train"
    for number in range(1, 8):
        _write_images(root / str(number), number, gray=(number == 4))
    fs = load_image_folder(root, num_classes=7)
    counts = class_counts(fs.expr, fs.expr_classes)
    # RAF-DB: 1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral.
    assert counts == {"Surprise": 1, "Fear": 2, "Disgust": 3, "Happiness": 4, "Sadness": 5, "Anger": 6, "Neutral": 7}
    happy = int(np.flatnonzero(fs.expr == labels.EXPR_CLASSES_7.index("Happiness"))[0])
    img = fs.load_image(happy)
    assert img.shape == (20, 20, 3) and np.array_equal(img[..., 0], img[..., 1])
    restored = pickle.loads(pickle.dumps(fs))
    assert np.array_equal(restored.load_image(0), fs.load_image(0))
    assert list(image_folder_splits(tmp_path / "rafdb")) == ["train"]


def test_affectnet_numbered_folders(tmp_path: Path) -> None:
    root = tmp_path / "an"
    for number in range(8):
        _write_images(root / str(number), 1)
    fs = load_image_folder(root, num_classes=8)
    names = [fs.expr_classes[i] for i in fs.expr]
    # AffectNet numbering: 0 Neutral ... 7 Contempt (-> Other), in folder order.
    assert names == ["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger", "Other"]


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_image_folder(tmp_path / "nope")
    (tmp_path / "empty" / "happy").mkdir(parents=True)
    with pytest.raises(InputError, match="no images"):
        load_image_folder(tmp_path / "empty")
    bad = tmp_path / "bad" / "sad"
    bad.mkdir(parents=True)
    (bad / "broken.jpg").write_bytes(b"not a jpeg")
    fs = load_image_folder(tmp_path / "bad")
    with pytest.raises(InputError, match="broken.jpg"):
        fs.load_image(0)


def test_frame_set_label_shapes_are_checked() -> None:
    with pytest.raises(ValueError):
        ArrayFrameSet("x", np.zeros((3, 4, 4), np.uint8), expr=np.zeros(2))
    with pytest.raises(ValueError):
        FileFrameSet("x", np.array(["a", "b"]), va=np.zeros((2, 3)))


def test_read_image_formats_agree(tmp_path: Path) -> None:
    from affectseq.data.frames import read_image_rgb

    rgb = np.random.default_rng(0).integers(0, 255, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "g.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.gif")  # OpenCV cannot read GIF: the Pillow path
    assert np.array_equal(read_image_rgb(tmp_path / "a.png"), rgb)
    gray = read_image_rgb(tmp_path / "g.png")
    assert gray.shape == (12, 10, 3) and np.array_equal(gray[..., 2], rgb[:, :, 0])
    gif = read_image_rgb(tmp_path / "p.gif")
    assert gif.shape == (12, 10, 3) and gif.dtype == np.uint8 and gif.flags.writeable
    with pytest.raises(InputError, match="not found"):
        read_image_rgb(tmp_path / "missing.jpg")
