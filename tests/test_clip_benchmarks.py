"""The named clip-benchmark layouts on small synthetic replicas of their published folders and split files."""

from __future__ import annotations

from pathlib import Path

import pytest
from clip_fixtures import write_frames, write_garbage, write_mp4

from affectseq.data.clip_benchmarks import actor_splits
from affectseq.data.inspect import detect_layout, inspect_dataset
from affectseq.data.registry import open_dataset
from affectseq.errors import ConfigError, InputError
from affectseq.labels import EXPR_CLASSES_7

DFEW_NAMES = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
DFEW_CANONICAL = ("Happiness", "Sadness", "Neutral", "Anger", "Surprise", "Disgust", "Fear")


def _labels(ds, split: str) -> dict[str, str]:
    return {v.video_id: ds.expr_classes[int(v.labels[0])] for v in ds.videos("EXPR", split)}


@pytest.fixture(scope="module")
def dfew(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 clips (mp4 under Clip/original, or frame folders under Clip/clip_224x224), two folds of split files."""
    root = tmp_path_factory.mktemp("DFEW")
    for number in range(1, 11):
        if number % 2:
            write_mp4(root / "Clip" / "original" / f"{number:05d}.mp4", 4 + number, seed=number)
        else:
            write_frames(root / "Clip" / "clip_224x224" / f"{number:05d}", 5, names=f"{number:05d}_{{:05d}}.jpg")
    label = {n: (n - 1) % 7 + 1 for n in range(1, 11)}  # labels 1..7 in turn
    splits = root / "EmoLabel_DataSplit"
    for fold, test in ((1, {1, 2, 3}), (2, {4, 5, 6})):
        for split, members in (("train", set(range(1, 11)) - test), ("test", test)):
            rows = ["video_name,label"] + [f"{n},{label[n]}" for n in sorted(members)]
            (splits / f"{split}(single-labeled)").mkdir(parents=True, exist_ok=True)
            (splits / f"{split}(single-labeled)" / f"set_{fold}.csv").write_text("\n".join(rows) + "\n")
    return root


def test_dfew_folds_classes_and_clips(dfew: Path) -> None:
    assert detect_layout(dfew) == "dfew"
    one = open_dataset(dfew)  # fold 1 by default
    assert one.layout == "dfew" and one.label_level == "clip" and one.expr_classes == EXPR_CLASSES_7
    assert one.splits("EXPR") == ("train", "test")
    assert sorted(_labels(one, "test")) == ["00001", "00002", "00003"]
    # Labels 1-7 = Happy, Sad, Neutral, Angry, Surprise, Disgust, Fear.
    assert _labels(one, "test") == {"00001": "Happiness", "00002": "Sadness", "00003": "Neutral"}
    assert _labels(one, "train")["00008"] == DFEW_CANONICAL[0] and _labels(one, "train")["00007"] == "Fear"
    two = open_dataset(dfew, fold=2, fps=30)
    assert sorted(_labels(two, "test")) == ["00004", "00005", "00006"]
    clips = {v.video_id: v for v in two.videos("EXPR", "train")}
    assert clips["00001"].source_video.suffix == ".mp4" and clips["00001"].n_frames == 5
    assert clips["00002"].source_video.is_dir() and clips["00002"].n_frames == 5 and clips["00002"].fps == 30
    assert any("fold 2 of 5" in note for note in two.notes)
    with pytest.raises(ConfigError, match="--fold must be 1..5"):
        open_dataset(dfew, fold=6)
    with pytest.raises(InputError, match="set_3.csv: DFEW fold 3: split file missing"):
        open_dataset(dfew, fold=3)


def test_dfew_bad_rows_and_missing_clips_are_named(dfew: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "DFEW"
    shutil.copytree(dfew, copy)
    path = copy / "EmoLabel_DataSplit" / "test(single-labeled)" / "set_1.csv"
    path.write_text(path.read_text() + "99,3\n7,9\n")
    ds = open_dataset(copy)
    problems = {(w.path, w.line): w.problem for w in ds.warnings}
    assert "clip 00099 not found" in problems[(str(path), 5)]
    assert "label 1-7" in problems[(str(path), 6)]
    report = inspect_dataset(copy)
    assert report["layout"] == "dfew" and report["warnings"]["count"] >= 2


def test_ferv39k_setup_files(tmp_path: Path) -> None:
    root = tmp_path / "FERV39k"
    write_mp4(root / "2_ClipsforFaceCrop" / "Action" / "Dinner" / "0001.mp4", 4)
    write_frames(root / "2_ClipsforFaceCrop" / "Action" / "Dinner" / "0002", 3)
    write_mp4(root / "2_ClipsforFaceCrop" / "Daily" / "Talk" / "0003.mp4", 5)
    setup = root / "4_setups" / "All_scenes"
    setup.mkdir(parents=True)
    (setup / "train_All.csv").write_text("Action/Dinner/0001 Happy\nAction/Dinner/0002 3\n")
    (setup / "test_All.csv").write_text("Daily/Talk/0003 Fear\nDaily/Talk/9999 Sad\n")
    assert detect_layout(root) == "ferv39k"
    ds = open_dataset(root)
    assert _labels(ds, "train") == {"Action-Dinner-0001": "Happiness", "Action-Dinner-0002": "Anger"}
    assert _labels(ds, "test") == {"Daily-Talk-0003": "Fear"}
    assert any("clip Daily-Talk-9999 not found" in w.problem for w in ds.warnings)


def test_mafw_single_set_folds_keep_its_own_classes(tmp_path: Path) -> None:
    root = tmp_path / "MAFW"
    for number in range(1, 7):
        write_mp4(root / "data" / "clips" / f"{number:05d}.mp4", 3, seed=number)
    names = {1: "anger", 2: "contempt", 3: "anxiety", 4: "happiness", 5: "helplessness", 6: "neutral"}
    for fold in (1, 2):
        folder = root / "Train & Test Set" / "single" / "no_caption" / f"set_{fold}"
        folder.mkdir(parents=True)
        test = {fold, fold + 2}
        (folder / "train.txt").write_text("".join(f"{n:05d}.mp4 {names[n]}\n" for n in names if n not in test))
        (folder / "test.txt").write_text("".join(f"{n:05d}.mp4 {names[n]}\n" for n in sorted(test)))
    assert detect_layout(root) == "mafw"
    ds = open_dataset(root, fold=2)
    assert ds.expr_classes == ("Neutral", "Anger", "Happiness", "Contempt", "anxiety", "helplessness")
    assert _labels(ds, "test") == {"00002": "Contempt", "00004": "Happiness"}
    assert len(ds.videos("EXPR", "train")) == 4


def test_afew_split_folders(tmp_path: Path) -> None:
    root = tmp_path / "AFEW"
    write_mp4(root / "Train_AFEW" / "Angry" / "000001.avi".replace(".avi", ".mp4"), 3)
    write_mp4(root / "Train_AFEW" / "Happy" / "000002.mp4", 3)
    write_mp4(root / "Val_AFEW" / "Sad" / "000003.mp4", 3)
    (root / "Val_AFEW" / "Fear").mkdir(parents=True)
    write_mp4(root / "Train_AFEW" / "AlignedFaces_LBPTOP_Points" / "x.mp4", 2)  # not a class
    assert detect_layout(root) == "afew"
    ds = open_dataset(root)
    assert ds.splits("EXPR") == ("train", "validation")
    assert set(_labels(ds, "train").values()) == {"Anger", "Happiness"}
    assert _labels(ds, "validation") == {"Val_AFEW-Sad-000003": "Sadness"}
    assert any(w.path.endswith("Fear") and "empty class folder" in w.problem for w in ds.warnings)
    assert any("AlignedFaces_LBPTOP_Points: not an AFEW class folder" in note for note in ds.notes)


def test_ravdess_and_cremad_labels_from_file_names(tmp_path: Path) -> None:
    rav = tmp_path / "RAVDESS"
    for actor in range(1, 11):
        for emotion in ("01", "02", "03"):
            write_mp4(rav / f"Actor_{actor:02d}" / f"01-01-{emotion}-01-01-01-{actor:02d}.mp4", 2)
    write_garbage(rav / "Actor_01" / "01-01-05-01-01-02-01.mp4")  # unreadable: named, left out
    write_mp4(rav / "Actor_02" / "02-01-03-01-01-01-02.mp4", 3)  # video-only twin of a full-AV file: read instead
    assert detect_layout(rav) == "ravdess"
    ds = open_dataset(rav)
    # calm stays the dataset's own class; Anger's only clip is unreadable: the label stays, with a warning.
    assert ds.expr_classes == ("Neutral", "Anger", "Happiness", "calm")
    assert any(w.problem == "label Anger has no readable clips" for w in ds.warnings)
    assert {s: len(ds.videos("EXPR", s)) for s in ds.splits("EXPR")} == {"train": 24, "validation": 3, "test": 3}
    actors = {s: {v.source_video.parent.name for v in ds.videos("EXPR", s)} for s in ds.splits("EXPR")}
    assert actors["test"] == {"Actor_10"} and actors["validation"] == {"Actor_09"}  # no actor in two splits
    assert any("01-01-05-01-01-02-01.mp4" in w.path and "unreadable" in w.problem for w in ds.warnings)
    label = {v.source_video.name: ds.expr_classes[int(v.labels[0])] for v in ds.videos("EXPR", "train")}
    assert "02-01-03-01-01-01-02.mp4" in label and "01-01-03-01-01-01-02.mp4" not in label
    assert any("1 full audio-video files left out" in note for note in ds.notes)
    assert label["01-01-02-01-01-01-03.mp4"] == "calm" and label["01-01-03-01-01-01-03.mp4"] == "Happiness"

    crema = tmp_path / "CREMA-D"
    for actor in (1001, 1002, 1003, 1004):
        for emotion in ("ANG", "HAP", "NEU"):
            write_mp4(crema / "VideoFlash" / f"{actor}_IEO_{emotion}_HI.mp4", 2)
    assert detect_layout(crema) == "crema_d"
    ds = open_dataset(crema)
    assert ds.expr_classes == ("Neutral", "Anger", "Happiness")
    assert {s: len(ds.videos("EXPR", s)) for s in ds.splits("EXPR")} == {"train": 9, "validation": 3}


def test_actor_splits_are_disjoint_and_ordered() -> None:
    split = actor_splits([f"{a:02d}" for a in range(1, 25)])
    assert [a for a, s in split.items() if s == "test"] == ["22", "23", "24"]
    assert sum(s == "train" for s in split.values()) == 19
