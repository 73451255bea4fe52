"""The one registry of dataset layouts: what a ``--data PATH`` is, found in one place, opened one way.

Every command that takes a dataset (``data inspect``, ``data faces``, ``extract``, ``train frames``,
``evaluate-model``, ``experiment paper``) asks :func:`open_dataset` (or :func:`detect_layout`) and
never tests for a layout itself. A layout is a :class:`Layout`: a name, a ``detect(path)`` test,
an ``open(path, strict, **options)`` that returns the dataset object, and a priority (layouts are
tried from the lowest number; the first whose ``detect`` says yes wins, so specific layouts such as
DFEW's split files come before generic ones such as class folders).

Two kinds of dataset objects come back (``Layout.kind``):

* ``"videos"``: the ``AbawDataset`` surface -- ``root``, ``layout``, ``label_level`` (``"frame"`` or
  ``"clip"``), ``tasks``, ``splits(task)``, ``videos(task, split) -> list[AnnotatedVideo]``,
  ``expr_classes``, ``warnings``, ``n_problems``, ``has_crops`` (faces already cropped: then also
  ``frame_set(task, split)``; else the faces come from ``source_video`` by ``data faces`` or
  extraction straight from the videos);
* ``"images"``: still-image sets -- ``layout``, ``label_level`` (``"image"``), ``framing``, ``grayscale``,
  ``splits()``, ``frame_set(task, split)`` and ``inspect()``.

Adding a layout (see docs/architecture.md, "How to add a dataset layout")::

    from affectseq.data.registry import Layout, register_layout
    register_layout(Layout("my_layout", detect=is_mine, open=MyDataset, priority=45))

``detect`` and ``open`` may be callables or ``"module:attribute"`` strings (imported on first use, so
``affectseq data inspect`` imports only the adapter it needs). ``detect`` returns a bool, or a more
specific name for the layout it found (the ABAW entry says which edition).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from affectseq.errors import ConfigError, InputError

Detector = Callable[[Path], "bool | str"]
Opener = Callable[..., Any]
KINDS: tuple[str, ...] = ("videos", "images")


@dataclass(frozen=True)
class Layout:
    """One dataset layout: how to recognise it (``detect``) and how to read it (``open``).

    ``options``: the names of the layout's own keyword options (``fold``, ``fps``); others are refused.
    ``aliases``: more names ``--layout`` accepts for it (the ABAW entry's editions).
    """

    name: str
    detect: Detector | str
    open: Opener | str
    kind: str = "videos"
    priority: int = 50
    summary: str = ""
    options: tuple[str, ...] = ()
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"layout {self.name!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    def detects(self, path: Path) -> str | None:
        """The layout's name (or the more specific one ``detect`` gives) when ``path`` is this layout, else None."""
        found = _resolve(self.detect)(path)
        if not found:
            return None
        return found if isinstance(found, str) else self.name

    def opener(self) -> Opener:
        """The ``open`` callable (a ``"module:attribute"`` string imported now)."""
        return _resolve(self.open)

    def load(self, path: Path, strict: bool = False, **options: Any) -> Any:
        """Open ``path`` as this layout (``options`` must be among ``self.options``; None values are dropped)."""
        given = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            allowed = ", ".join(self.options) or "none"
            raise ConfigError(f"layout {self.name} takes no option {', '.join(unknown)} (its options: {allowed})")
        return _resolve(self.open)(path, strict=strict, **given)


def _resolve(target: Callable[..., Any] | str) -> Callable[..., Any]:
    if callable(target):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


# The built-in layouts. Strings keep the registry free of adapter imports (and so of import cycles):
# an adapter's module is imported when its layout is tried or opened.
_BUILTIN: tuple[Layout, ...] = (
    Layout("fer2013", "affectseq.data.image_sets:is_fer2013", "affectseq.data.image_sets:Fer2013Set", "images", 10,
           "FER2013 as one .npz (images, labels, split)"),
    Layout("ferplus", "affectseq.data.image_sets:is_ferplus", "affectseq.data.image_sets:FerPlusSet", "images", 11,
           "FER+ as one .npz (images, votes, split)"),
    Layout("abaw", "affectseq.data.abaw:detect_abaw", "affectseq.data.abaw:AbawDataset", "videos", 20,
           "Aff-Wild2/ABAW tree (abaw2020, abaw3, abaw6): annotation folders, cropped_aligned, raw videos",
           aliases=("abaw2020", "abaw3", "abaw6")),
    Layout("dfew", "affectseq.data.clip_benchmarks:is_dfew", "affectseq.data.clip_benchmarks:DfewDataset",
           "videos", 30, "DFEW: EmoLabel_DataSplit/{train,test}(single-labeled)/set_N.csv, 5 folds",
           options=("fold", "fps")),
    Layout("ferv39k", "affectseq.data.clip_benchmarks:is_ferv39k", "affectseq.data.clip_benchmarks:Ferv39kDataset",
           "videos", 31, "FERV39k: 4_setups/All_scenes/{train,test}_All.csv", options=("fps",)),
    Layout("mafw", "affectseq.data.clip_benchmarks:is_mafw", "affectseq.data.clip_benchmarks:MafwDataset",
           "videos", 32, "MAFW: Train & Test Set/single/no_caption/set_N/{train,test}.txt, 5 folds",
           options=("fold", "fps")),
    Layout("afew", "affectseq.data.clip_benchmarks:is_afew", "affectseq.data.clip_benchmarks:AfewDataset",
           "videos", 33, "AFEW: Train_AFEW/<class>/*.avi, Val_AFEW/<class>/*.avi", options=("fps",)),
    Layout("ravdess", "affectseq.data.clip_benchmarks:is_ravdess", "affectseq.data.clip_benchmarks:RavdessDataset",
           "videos", 34, "RAVDESS: Actor_NN/MM-VV-EE-II-SS-RR-AA.mp4 (label in the file name)"),
    Layout("crema_d", "affectseq.data.clip_benchmarks:is_cremad", "affectseq.data.clip_benchmarks:CremaDDataset",
           "videos", 35, "CREMA-D: <actor>_<sentence>_<EMO>_<level>.flv (label in the file name)"),
    Layout("video_csv", "affectseq.data.video_csv:is_video_csv", "affectseq.data.video_csv:VideoCsvDataset",
           "videos", 40, "videos with per-frame CSV labels (<name>.mp4 + <name>.csv)"),
    Layout("clip_list", "affectseq.data.clip_layouts:is_clip_list", "affectseq.data.clip_layouts:ClipListDataset",
           "videos", 45, "a CSV video,label[,split][,start_sec,end_sec], paths relative to it", options=("fps",)),
    Layout("clip_folders", "affectseq.data.clip_layouts:is_clip_folders",
           "affectseq.data.clip_layouts:ClipFoldersDataset", "videos", 60,
           "ROOT/[split/]<class>/<clip>.<video> or <clip>/ folders of frames", options=("fps",)),
    Layout("image_folder", "affectseq.data.image_sets:is_image_folder", "affectseq.data.image_sets:ImageFolderSet",
           "images", 70, "class-per-folder images (root/<class>/*.jpg or root/<split>/<class>/)"),
)
_REGISTRY: dict[str, Layout] = {layout.name: layout for layout in _BUILTIN}


def register_layout(layout: Layout, replace: bool = False) -> Layout:
    """Add ``layout`` to the registry (``replace``: allow a name already taken); returns it."""
    if layout.name in _REGISTRY and not replace:
        raise ConfigError(f"a dataset layout named {layout.name!r} is already registered")
    _REGISTRY[layout.name] = layout
    return layout


def unregister_layout(name: str) -> None:
    """Remove a registered layout (tests and plug-ins that registered one)."""
    _REGISTRY.pop(name, None)


def registered_layouts() -> list[Layout]:
    """Every layout, in detection order (priority, then name)."""
    return sorted(_REGISTRY.values(), key=lambda layout: (layout.priority, layout.name))


def get_layout(name: str) -> Layout:
    """The layout registered as ``name`` (or naming it among its aliases); ConfigError listing them otherwise."""
    for layout in registered_layouts():
        if name == layout.name or name in layout.aliases:
            return layout
    raise ConfigError(f"unknown dataset layout {name!r}; known: {', '.join(l.name for l in registered_layouts())}")


def detect_layout(path: str | os.PathLike[str]) -> tuple[Layout, str]:
    """``(layout, name)`` of the dataset at ``path``: the first registered layout whose ``detect`` says yes.

    ``name`` is the layout's name or the more specific one it reported (``abaw6``...). Raises
    :class:`~affectseq.errors.InputError` for a missing path or one no layout recognises.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "dataset not found")
    for layout in registered_layouts():
        name = layout.detects(path)
        if name:
            return layout, name
    known = ", ".join(l.name for l in registered_layouts())
    if path.is_file():
        raise InputError(path, f"not a dataset (expected a FER2013/FER+ .npz, a clip list .csv or a dataset folder; "
                               f"known layouts: {known})")
    raise InputError(path, f"unknown dataset layout (known: {known}; 'affectseq data inspect --list-layouts')")


def open_dataset(path: str | os.PathLike[str], layout: str | None = None, strict: bool = False,
                 **options: Any) -> Any:
    """Open the dataset at ``path``: detected, or as ``layout`` (a registered name) when given.

    ``options`` are the layout's own (``fold=2`` for DFEW/MAFW, ``fps=25`` for folders of frames);
    None values mean "not given". The object returned has ``layout`` set to the detected name.
    """
    path = Path(path)
    if layout is not None:
        chosen = get_layout(layout)
        if not path.exists():
            raise InputError(path, "dataset not found")
        name = layout
    else:
        chosen, name = detect_layout(path)
    dataset = chosen.load(path, strict=strict, **options)
    if getattr(dataset, "layout", None) is None:
        try:
            dataset.layout = name
        except AttributeError:  # a read-only property (ABAW's edition): the object knows its own name
            pass
    return dataset


def dataset_has_crops(dataset: Any) -> bool:
    """Whether a video dataset's faces are already cropped (else they come from its videos)."""
    return bool(getattr(dataset, "has_crops", False))


def label_level(dataset: Any) -> str:
    """``"clip"`` for one label per clip, ``"frame"`` for per-frame labels, ``"image"`` for still images."""
    return str(getattr(dataset, "label_level", "frame"))
