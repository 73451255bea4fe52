"""Named layouts of the public clip benchmarks, as their releases describe their folders and split files.

Each reads the benchmark's own label/split files and finds each listed clip as a video file or a folder
of frame images anywhere under the root (releases ship either, in differently named folders), by its
name. Classes map to the canonical expressions where they are ones (:func:`affectseq.data.clips.clip_classes`).

* **DFEW** (Jiang et al., ACM MM 2020): ``EmoLabel_DataSplit/train(single-labeled)/set_N.csv`` and
  ``test(single-labeled)/set_N.csv``, N = 1..5 (``--fold N``, default 1): header ``video_name,label``,
  clip numbers with labels 1-7 = Happy, Sad, Neutral, Angry, Surprise, Disgust, Fear. Clips are
  ``<number:05d>`` (``.mp4`` or a frame folder). Splits ``train``/``test``.
* **FERV39k** (Wang et al., CVPR 2022): ``4_setups/All_scenes/train_All.csv`` and ``test_All.csv``,
  one clip per line, ``<clip path> <label>`` (space or comma separated; label a name, Happy ... Fear,
  or its index 0-6 in the order Happy, Sad, Neutral, Angry, Surprise, Disgust, Fear); the clip path
  is relative to the root or to one of its top folders (``2_ClipsforFaceCrop/``...).
* **MAFW** (Liu et al., ACM MM 2022): ``Train & Test Set/single/no_caption/set_N/{train,test}.txt``
  (N = 1..5, ``--fold``), one ``<clip file> <label>`` per line, 11 classes (anger, disgust, fear,
  happiness, neutral, sadness, surprise, contempt, anxiety, helplessness, disappointment; contempt is
  ``Contempt``, as in FER+, not ABAW's catch-all Other). Clips by number under ``data/`` (``clips/00001.mp4`` or ``frames/00001/``).
* **AFEW** (Dhall et al., EmotiW): ``Train_AFEW/<class>/*.avi`` and ``Val_AFEW/<class>/*.avi``
  (Angry, Disgust, Fear, Happy, Neutral, Sad, Surprise) -> splits ``train``/``validation``.
* **RAVDESS** (Livingstone & Russo, 2018): ``Actor_NN/MM-VV-EE-II-SS-RR-AA.mp4``; EE = emotion
  01-08 neutral, calm, happy, sad, angry, fearful, disgust, surprised (``calm`` stays its own class);
  AA = actor. Audio-only files are not videos and are not read.
* **CREMA-D** (Cao et al., 2014): ``<actor>_<sentence>_<EMO>_<level>.flv`` (``VideoFlash/``), EMO
  one of ANG, DIS, FEA, HAP, NEU, SAD.

RAVDESS and CREMA-D publish no split: actors are split so that no actor is in two splits (sorted by
number: the first 80% train, the next 10% validation, the rest test); say so in the report's notes.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Iterator

from affectseq.data.clips import ClipDataset, ClipEntry
from affectseq.data.splits import normalise_split
from affectseq.errors import ConfigError, InputError
from affectseq.io.frame_folder import is_frame_folder
from affectseq.io.video import VIDEO_SUFFIXES

DFEW_CLASSES: tuple[str, ...] = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")  # labels 1-7
FERV39K_CLASSES: tuple[str, ...] = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")  # 0-6
MAFW_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise",
                                 "contempt", "anxiety", "helplessness", "disappointment")
RAVDESS_EMOTIONS: dict[str, str] = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                                    "06": "fearful", "07": "disgust", "08": "surprised"}
CREMAD_EMOTIONS: dict[str, str] = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy",
                                   "NEU": "neutral", "SAD": "sad"}
N_FOLDS = 5
DFEW_SPLITS = "EmoLabel_DataSplit"
FERV39K_SETUP = Path("4_setups") / "All_scenes"
MAFW_SPLIT_DIRS: tuple[str, ...] = ("Train & Test Set", "Train_Test_Set", "Train&Test Set")
AFEW_SPLITS: dict[str, str] = {"Train_AFEW": "train", "Val_AFEW": "validation"}
AFEW_CLASSES: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
CREMAD_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
MAX_DEPTH = 4


def _walk(root: Path, skip: tuple[str, ...] = ()) -> Iterator[Path]:
    """Video files and frame folders under ``root`` (a few levels; frame folders are not entered)."""
    base = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            folder = here / name
            if name.startswith(".") or name in skip:
                continue
            if is_frame_folder(folder):
                yield folder
            elif len(folder.parts) - base < MAX_DEPTH:
                keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            if Path(name).suffix.lower() in VIDEO_SUFFIXES:
                yield here / name


def clip_index(root: Path, skip: tuple[str, ...] = ()) -> dict[str, Path]:
    """``{clip name: path}`` of every clip under ``root``; a video file wins over a frame folder of one name."""
    found: dict[str, Path] = {}
    for path in _walk(root, skip):
        name = path.stem if path.is_file() else path.name
        if name not in found or (path.is_file() and not found[name].is_file()):
            found[name] = path
    return found


def _fold(fold: int | None, layout: str) -> int:
    fold = 1 if fold is None else int(fold)
    if not 1 <= fold <= N_FOLDS:
        raise ConfigError(f"{layout}: --fold must be 1..{N_FOLDS}, got {fold}")
    return fold


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """``(line, cells)`` of a split file: comma- or whitespace-separated, blank lines skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise InputError(path, f"unreadable split file ({err.strerror})") from None
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            cells = next(csv.reader([raw])) if "," in raw else raw.split()
            rows.append((line, [c.strip() for c in cells]))
    return rows


class _Lister:
    """Collects a benchmark's entries and the problems met while listing them."""

    def __init__(self, root: Path):
        self.root = root
        self.entries: list[ClipEntry] = []
        self.problems: list[tuple[Path, str, int | None]] = []

    def add(self, clip: Path | None, name: str, label: str, split: str, listed_in: Path, line: int | None) -> None:
        if clip is None:
            self.problems.append((listed_in, f"clip {name} not found under {self.root}; row skipped", line))
            return
        self.entries.append(ClipEntry(clip, label, split, name, listed_in, line))


# --- DFEW ---------------------------------------------------------------------------------------------
def _dfew_split_dir(root: Path) -> Path | None:
    for folder in (root / DFEW_SPLITS, *(d / DFEW_SPLITS for d in root.iterdir() if d.is_dir())):
        if (folder / "train(single-labeled)").is_dir():
            return folder
    return None


def is_dfew(path: Path) -> bool:
    """A DFEW release: ``EmoLabel_DataSplit/train(single-labeled)/`` at the root (or one level down)."""
    return path.is_dir() and _dfew_split_dir(path) is not None


class DfewDataset(ClipDataset):
    """DFEW, one fold (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str], strict: bool = False, fold: int | None = None,
                 fps: float | None = None):
        root = Path(root)
        n = _fold(fold, "dfew")
        split_dir = _dfew_split_dir(root)
        assert split_dir is not None
        clips = clip_index(root, skip=(DFEW_SPLITS,))
        lister = _Lister(root)
        for split in ("train", "test"):
            path = split_dir / f"{split}(single-labeled)" / f"set_{n}.csv"
            if not path.is_file():
                raise InputError(path, f"DFEW fold {n}: split file missing")
            for line, cells in _read_rows(path)[1:]:  # header video_name,label
                if len(cells) < 2 or not cells[0].isdigit() or cells[1] not in {str(k) for k in range(1, 8)}:
                    lister.problems.append((path, f"expected '<clip number>,<label 1-7>', got {','.join(cells)!r}",
                                            line))
                    continue
                name = f"{int(cells[0]):05d}"
                lister.add(clips.get(name) or clips.get(cells[0]), name, DFEW_CLASSES[int(cells[1]) - 1], split,
                           path, line)
        super().__init__(root, "dfew", lister.entries, strict=strict, fps=fps, problems=lister.problems,
                         notes=[f"fold {n} of {N_FOLDS} (--fold N); DFEW has no validation split: "
                                "report on test, select on a part of train"])


# --- FERV39k ------------------------------------------------------------------------------------------
def is_ferv39k(path: Path) -> bool:
    """A FERV39k release: ``4_setups/All_scenes/train_All.csv``."""
    return path.is_dir() and (path / FERV39K_SETUP / "train_All.csv").is_file()


def _find_relative(root: Path, rel: str) -> Path | None:
    """A clip given by a path relative to the root or one of its top folders, with or without a suffix."""
    bases = [root, *sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))]
    for base in bases:
        candidate = base / rel
        if candidate.is_file() or is_frame_folder(candidate):
            return candidate
        for suffix in (".mp4", ".avi", ".mov", ".mkv"):
            if candidate.with_name(candidate.name + suffix).is_file():
                return candidate.with_name(candidate.name + suffix)
    return None


class Ferv39kDataset(ClipDataset):
    """FERV39k's All_scenes setup (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str], strict: bool = False, fps: float | None = None):
        root = Path(root)
        lister = _Lister(root)
        names = {c.lower(): c for c in FERV39K_CLASSES}
        for split, file in (("train", "train_All.csv"), ("test", "test_All.csv")):
            path = root / FERV39K_SETUP / file
            if not path.is_file():
                raise InputError(path, "FERV39k split file missing")
            for line, cells in _read_rows(path):
                label = cells[-1] if len(cells) >= 2 else ""
                label = FERV39K_CLASSES[int(label)] if label.isdigit() and int(label) < 7 else names.get(label.lower())
                if label is None:
                    if line > 1:  # a header line is allowed
                        lister.problems.append((path, f"expected '<clip path> <label>', got {' '.join(cells)!r}",
                                                line))
                    continue
                rel = cells[0]
                lister.add(_find_relative(root, rel), _ferv_id(rel), label, split, path, line)
        super().__init__(root, "ferv39k", lister.entries, strict=strict, fps=fps, problems=lister.problems,
                         notes=["All_scenes setup; FERV39k has no validation split: report on test"])


def _ferv_id(rel: str) -> str:
    from affectseq.data.clips import clip_id

    return clip_id(Path(rel))


# --- MAFW ---------------------------------------------------------------------------------------------
def _mafw_split_dir(root: Path) -> Path | None:
    for name in MAFW_SPLIT_DIRS:
        folder = root / name / "single" / "no_caption"
        if folder.is_dir():
            return folder
    return None


def is_mafw(path: Path) -> bool:
    """A MAFW release: ``Train & Test Set/single/no_caption/`` at the root."""
    return path.is_dir() and _mafw_split_dir(path) is not None


class MafwDataset(ClipDataset):
    """MAFW's single-expression set, one fold (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str], strict: bool = False, fold: int | None = None,
                 fps: float | None = None):
        root = Path(root)
        n = _fold(fold, "mafw")
        split_dir = _mafw_split_dir(root)
        assert split_dir is not None
        clips = clip_index(root, skip=tuple(MAFW_SPLIT_DIRS))
        lister = _Lister(root)
        for split in ("train", "test"):
            path = split_dir / f"set_{n}" / f"{split}.txt"
            if not path.is_file():
                raise InputError(path, f"MAFW fold {n}: split file missing")
            for line, cells in _read_rows(path):
                label = cells[-1].lower() if len(cells) >= 2 else ""
                if label not in MAFW_CLASSES:
                    lister.problems.append((path, f"expected '<clip> <label>' with one of the 11 MAFW labels, got "
                                                  f"{' '.join(cells)!r}", line))
                    continue
                name = Path(cells[0]).stem
                lister.add(clips.get(name), name, label, split, path, line)
        super().__init__(root, "mafw", lister.entries, strict=strict, fps=fps, problems=lister.problems,
                         notes=[f"single-expression set, fold {n} of {N_FOLDS} (--fold N); no validation split"])


# --- AFEW ---------------------------------------------------------------------------------------------
def is_afew(path: Path) -> bool:
    """An AFEW release: ``Train_AFEW/`` or ``Val_AFEW/`` class folders at the root."""
    return path.is_dir() and any((path / name).is_dir() for name in AFEW_SPLITS)


class AfewDataset(ClipDataset):
    """AFEW: ``Train_AFEW/<class>/`` and ``Val_AFEW/<class>/`` clips (other folders there, such as the
    release's aligned-face folders, are not classes: named in the notes and not read)."""

    def __init__(self, root: str | os.PathLike[str], strict: bool = False, fps: float | None = None):
        from affectseq.data.clips import clip_id

        root = Path(root)
        lister = _Lister(root)
        notes: list[str] = []
        known = {c.lower() for c in AFEW_CLASSES}
        for folder, split in AFEW_SPLITS.items():
            for class_dir in sorted(d for d in (root / folder).glob("*") if d.is_dir()):
                if class_dir.name.lower() not in known:
                    notes.append(f"{class_dir}: not an AFEW class folder ({', '.join(AFEW_CLASSES)}); not read")
                    continue
                clips = sorted(p for p in class_dir.iterdir()
                               if p.suffix.lower() in VIDEO_SUFFIXES or is_frame_folder(p))
                if not clips:
                    lister.problems.append((class_dir, "empty class folder: no clips", None))
                for clip in clips:
                    lister.add(clip, clip_id(clip.relative_to(root)), class_dir.name, split, class_dir, None)
        super().__init__(root, "afew", lister.entries, strict=strict, fps=fps, problems=lister.problems,
                         notes=notes)


# --- RAVDESS and CREMA-D: the label in the file name -----------------------------------------------------
def _named_files(root: Path, pattern: re.Pattern[str]) -> Iterator[tuple[Path, re.Match[str]]]:
    for path in _walk(root):
        match = pattern.match(path.stem) if path.is_file() else None
        if match:
            yield path, match


def is_ravdess(path: Path) -> bool:
    """A folder of RAVDESS-named videos (``MM-VV-EE-II-SS-RR-AA.mp4``)."""
    return path.is_dir() and next(_named_files(path, RAVDESS_NAME), None) is not None


def is_cremad(path: Path) -> bool:
    """A folder of CREMA-D-named videos (``1001_DFA_ANG_XX.flv``)."""
    return path.is_dir() and next(_named_files(path, CREMAD_NAME), None) is not None


def actor_splits(actors: list[str]) -> dict[str, str]:
    """Speaker-independent splits: actors sorted, the first 80% train, the next 10% validation, the rest test."""
    ordered = sorted(set(actors), key=lambda a: (len(a), a))
    n = len(ordered)
    n_train = max(1, int(round(0.8 * n)))
    n_val = max(1, int(round(0.1 * n))) if n >= 3 else 0
    return {a: "train" if k < n_train else "validation" if k < n_train + n_val else "test"
            for k, a in enumerate(ordered)}


def _actor_entries(root: Path, found: list[tuple[Path, str, str]]) -> list[ClipEntry]:
    """Entries of ``(clip, label, actor)`` with actor-wise splits."""
    from affectseq.data.clips import clip_id

    split_of = actor_splits([actor for _, _, actor in found])
    return [ClipEntry(clip, label, split_of[actor], clip_id(clip.relative_to(root)), clip.parent)
            for clip, label, actor in found]


class RavdessDataset(ClipDataset):
    """RAVDESS's videos, labelled by their file names (see the module docstring).

    A performance released both as full audio-video (modality 01) and video-only (02) is one clip: the
    video-only file is read, the other named in the notes, so no face appears twice.
    """

    def __init__(self, root: str | os.PathLike[str], strict: bool = False):
        root = Path(root)
        problems: list[tuple[Path, str, int | None]] = []
        found: dict[str, tuple[Path, str, str]] = {}
        twins = 0
        for path, match in sorted(_named_files(root, RAVDESS_NAME), key=lambda item: item[1].group(1), reverse=True):
            emotion = RAVDESS_EMOTIONS.get(match.group(3))
            if emotion is None:
                problems.append((path, f"emotion code {match.group(3)} is not 01-08; skipped", None))
                continue
            performance = path.stem[3:]  # all but the modality: 02 (video-only) sorts first and wins
            if performance in found:
                twins += 1
                continue
            found[performance] = (path, emotion, match.group(7))
        notes = ["no published split: actors split 80/10/10 (train/validation/test), no actor in two splits"]
        if twins:
            notes.append(f"{twins} full audio-video files left out: the same performances as video-only files read")
        super().__init__(root, "ravdess", _actor_entries(root, list(found.values())), strict=strict,
                         problems=problems, notes=notes)


class CremaDDataset(ClipDataset):
    """CREMA-D's videos, labelled by their file names (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str], strict: bool = False):
        root = Path(root)
        problems: list[tuple[Path, str, int | None]] = []
        found = []
        for path, match in _named_files(root, CREMAD_NAME):
            emotion = CREMAD_EMOTIONS.get(match.group(3))
            if emotion is None:
                problems.append((path, f"emotion code {match.group(3)} is not one of "
                                       f"{', '.join(CREMAD_EMOTIONS)}; skipped", None))
                continue
            found.append((path, emotion, match.group(1)))
        super().__init__(root, "crema_d", _actor_entries(root, found), strict=strict, problems=problems,
                         notes=["no published split: actors split 80/10/10 (train/validation/test), "
                                "no actor in two splits"])


__all__ = ["AfewDataset", "CremaDDataset", "DfewDataset", "Ferv39kDataset", "MafwDataset", "RavdessDataset",
           "actor_splits", "clip_index", "normalise_split"]
