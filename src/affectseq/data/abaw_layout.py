"""Finding an Aff-Wild2/ABAW dataset's parts on disk: annotation folders (by edition), crops, raw videos.

Annotation layouts by ABAW edition (``<split>`` names are kept as found on disk):

* ``abaw2020``: ``annotations/{VA_Set,EXPR_Set,AU_Set}/{Training_Set,Validation_Set}/<video>.txt``
* ``abaw3`` (ABAW 3-5): ``{VA_Estimation_Challenge,EXPR_Classification_Challenge,AU_Detection_Challenge}/
  {Train_Set,Validation_Set}/<video>.txt``
* ``abaw6`` (ABAW 6 onwards): as ``abaw3`` with ``EXPR_Recognition_Challenge``.

Task folders are searched from the root down a few levels (users unpack the
archives under differently named parents). Face crops live in
``cropped_aligned*/<video>/<i:05d>.jpg``; raw videos (optional) anywhere in the
tree (``videos/``, ``raw_videos/``, ``batch1/``, ``batch2/``, ...), matched by
file stem; ``<video>_left``/``<video>_right`` share the raw video ``<video>.<ext>``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from affectseq.io.video import VIDEO_SUFFIXES

LAYOUT_TASK_FOLDERS: dict[str, dict[str, str]] = {
    "abaw6": {"VA": "VA_Estimation_Challenge", "EXPR": "EXPR_Recognition_Challenge", "AU": "AU_Detection_Challenge"},
    "abaw3": {"VA": "VA_Estimation_Challenge", "EXPR": "EXPR_Classification_Challenge", "AU": "AU_Detection_Challenge"},
    "abaw2020": {"VA": "VA_Set", "EXPR": "EXPR_Set", "AU": "AU_Set"},
}
# Newest first: when a tree holds several editions, the newest wins.
LAYOUT_ORDER: tuple[str, ...] = ("abaw6", "abaw3", "abaw2020")
CROP_ROOT_PREFIX = "cropped_aligned"
TWO_PERSON_SUFFIXES: tuple[str, ...] = ("_left", "_right")
MAX_SEARCH_DEPTH = 4
# In each crop folder that ``affectseq data faces`` wrote: its raw video and frame rate (crop readers list *.jpg only).
CROPS_MANIFEST = ".affectseq-crops.json"
# At the root of a tree ``data faces`` wrote from a clip dataset: its label level and class names, so the
# tree reads back as the clip dataset it came from (one label per clip, the dataset's own classes).
DATASET_DECLARATION = ".affectseq-dataset.json"

_FOLDER_TO_TASK: dict[str, str] = {
    folder: task for layout in LAYOUT_TASK_FOLDERS.values() for task, folder in layout.items()
}


@dataclass
class AbawTree:
    """What :func:`scan_abaw_root` found under a root."""

    root: Path
    layout: str | None
    task_dirs: dict[str, Path]  # task -> its annotation folder (of the chosen layout)
    crop_roots: list[Path]
    videos: dict[str, Path]  # raw video stem -> path
    other_layouts: list[str] = field(default_factory=list)  # editions also present but not used

    def splits(self, task: str) -> dict[str, Path]:
        """``{split folder name: folder}`` of a task (folders holding ``.txt`` files)."""
        task_dir = self.task_dirs.get(task)
        if task_dir is None:
            return {}
        return {d.name: d for d in sorted(task_dir.iterdir())
                if d.is_dir() and any(p.suffix == ".txt" for p in d.iterdir())}

    def source_video(self, video_id: str) -> Path | None:
        """The raw video of an annotated video id (``_left``/``_right`` map to the shared video)."""
        if video_id in self.videos:
            return self.videos[video_id]
        for suffix in TWO_PERSON_SUFFIXES:
            if video_id.endswith(suffix):
                return self.videos.get(video_id[: -len(suffix)])
        return None


def _layout_of(folder_name: str) -> list[str]:
    return [layout for layout, folders in LAYOUT_TASK_FOLDERS.items() if folder_name in folders.values()]


def scan_abaw_root(root: str | os.PathLike[str]) -> AbawTree:
    """Walk ``root`` (a few levels, never into crop folders) for task folders, crop roots and raw videos."""
    root = Path(root)
    found: dict[str, dict[str, Path]] = {layout: {} for layout in LAYOUT_ORDER}
    crop_roots: list[Path] = []
    videos: dict[str, Path] = {}
    base_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        depth = len(here.parts) - base_depth
        keep: list[str] = []
        for name in sorted(dirnames):
            if name.startswith(CROP_ROOT_PREFIX):
                crop_roots.append(here / name)  # millions of jpgs below: never walked
            elif name in _FOLDER_TO_TASK:
                for layout in _layout_of(name):
                    found[layout].setdefault(_FOLDER_TO_TASK[name], here / name)
            elif not name.startswith(".") and depth < MAX_SEARCH_DEPTH:
                keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            path = here / name
            if path.suffix.lower() in VIDEO_SUFFIXES:
                videos.setdefault(path.stem, path)
    # abaw3 and abaw6 share the VA and AU folder names; the EXPR folder tells them apart.
    present = [layout for layout in LAYOUT_ORDER if found[layout]]
    if "abaw6" in present and "abaw3" in present and "EXPR" not in found["abaw6"]:
        present.remove("abaw6")
    elif "abaw6" in present and "abaw3" in present and "EXPR" not in found["abaw3"]:
        present.remove("abaw3")
    layout = present[0] if present else None
    return AbawTree(
        root=root, layout=layout, task_dirs=found[layout] if layout else {}, crop_roots=sorted(crop_roots),
        videos=videos, other_layouts=[p for p in present[1:] if p != layout],
    )


def crop_frame_numbers(crop_dir: Path) -> set[int]:
    """The 1-based row numbers ``i`` of the ``<i:05d>.jpg`` crops in ``crop_dir``."""
    numbers: set[int] = set()
    with os.scandir(crop_dir) as entries:
        for entry in entries:
            stem, dot, ext = entry.name.rpartition(".")
            if dot and ext.lower() == "jpg" and stem.isdigit():
                numbers.add(int(stem))
    return numbers


def crop_folder_fps(crop_dir: Path) -> float | None:
    """The frame rate ``data faces`` recorded for the video of ``crop_dir`` (its :data:`CROPS_MANIFEST`);
    None for crops made elsewhere (ABAW's own) or before ``data faces`` recorded it."""
    try:
        fps = json.loads((crop_dir / CROPS_MANIFEST).read_text(encoding="utf-8")).get("fps")
    except (OSError, ValueError, AttributeError):
        return None
    return float(fps) if isinstance(fps, (int, float)) and fps > 0 else None


def read_dataset_declaration(root: Path) -> dict:
    """The :data:`DATASET_DECLARATION` of a tree: ``{"label_level", "expr_classes", "source_layout"}``; {} if none."""
    try:
        declared = json.loads((root / DATASET_DECLARATION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(declared, dict):
        return {}
    classes = declared.get("expr_classes")
    ok_classes = isinstance(classes, list) and all(isinstance(c, str) and c for c in classes)
    level = declared.get("label_level")
    return {"label_level": level if level in ("frame", "clip") else "frame",
            "expr_classes": tuple(classes) if ok_classes else (),
            "source_layout": str(declared.get("source_layout", ""))}
