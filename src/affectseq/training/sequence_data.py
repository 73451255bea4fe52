"""What a sequence run trains on: the sample kind for a store, and its train/validation datasets.

``SequenceTrainConfig.mode="auto"`` (the default) picks the sample kind from the store:

* a **clip store** (manifest ``label_level == "clip"``: extracted from a clip dataset, one
  label per clip) trains one label per clip: ``clip_frames`` (16) frames sampled
  uniformly over each clip, masked where there is no face (:mod:`affectseq.sequences.clips`).
  Any clip of one frame or more gives a sample, so no window length has to fit the data;
* a **per-frame store** (ABAW, ``video_csv``) keeps the paper's seq2one windows of
  ``window`` (100) frames.

Per-frame data with videos shorter than the window: with ``pad_start`` left at ``auto``
a split that would have **no** full window is trained on left-padded windows instead
(``pad_start=true``: every annotated frame after the first gets a window of the frames
before it, masked where they do not exist, as ``predict`` builds them at a track's start),
and the run says so. Videos too short for a full window are always counted and reported,
never dropped silently. A split still without a sample is an ``InputError`` that says why.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from affectseq.errors import InputError
from affectseq.features.store import FeatureStore
from affectseq.sequences.clips import ClipDataset, ClipSpec
from affectseq.sequences.dataset import WindowDataset
from affectseq.sequences.windows import WindowSpec

log = logging.getLogger(__name__)
CLIP_NOTE = "clip-level training"


@dataclass(frozen=True)
class SamplePlan:
    """What ``auto`` settings resolved to for one store: recorded in the bundle and ``train_summary.json``.

    ``mode``: ``seq2one``, ``seq2seq`` or ``clip``; ``length``: frames per sample (the window,
    or the frames sampled per clip); ``pad_start``: seq2one left-padded windows;
    ``notes``: what was decided and why, one sentence each (logged as warnings).
    """

    mode: str
    length: int
    pad_start: bool
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "length": self.length, "pad_start": self.pad_start, "notes": list(self.notes)}


def resolve_mode(store: FeatureStore, mode: str) -> str:
    """``auto``: ``clip`` on a clip store, else ``seq2one`` (the paper); other modes as given.

    A clip store can also be trained with windows (``mode=seq2one``: every frame carries
    its clip's label); ``mode=clip`` on a per-frame store samples whole videos, which only
    makes sense when each video has one label (checked by the caller's data).
    """
    if mode != "auto":
        return mode
    return "clip" if store.label_level == "clip" else "seq2one"


def _split_ids(store: FeatureStore, config: Any, tasks: tuple[str, ...]) -> tuple[list[str], list[str], str, str]:
    """(train ids, validation ids, the split whose labels validation reads, a note or "").

    A store without the validation split (DFEW, FERV39k and MAFW publish train/test only) holds out a
    seeded ``val_fraction`` of the training videos for validation, so the test split stays unseen.
    """
    split_task = tasks[0] if len(tasks) == 1 else "multi"
    train_ids = store.video_ids(split_task, config.train_split)
    val_ids = store.video_ids(split_task, config.val_split)
    note, val_labels = "", config.val_split
    if train_ids and not val_ids and len(train_ids) >= 2:
        rng = np.random.default_rng([config.seed, 17])
        n_val = min(len(train_ids) - 1, max(1, int(round(config.val_fraction * len(train_ids)))))
        held = set(rng.choice(len(train_ids), n_val, replace=False).tolist())
        val_ids = [v for i, v in enumerate(train_ids) if i in held]
        train_ids = [v for i, v in enumerate(train_ids) if i not in held]
        val_labels = config.train_split
        note = (f"no {config.val_split!r} split in the store: {n_val} of {n_val + len(train_ids)} training videos "
                f"(val_fraction={config.val_fraction:g}, seeded) are held out for validation")
    if not train_ids or not val_ids:
        raise InputError(store.root / "manifest.json",
                         f"need videos in splits {config.train_split!r} and {config.val_split!r} for {split_task} "
                         f"(store splits: {', '.join(store.splits(tasks[0])) or 'none'})")
    return train_ids, val_ids, val_labels, note


def test_split_ids(store: FeatureStore, config: Any, tasks: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """(the test split, its videos) scored after training: ``test_split`` ("auto": ``test`` if the store has it)."""
    split_task = tasks[0] if len(tasks) == 1 else "multi"
    name = "test" if config.test_split == "auto" else config.test_split
    if not name or name in (config.train_split, config.val_split):
        return None, []
    ids = store.video_ids(split_task, name)
    if not ids and config.test_split != "auto":
        raise InputError(store.root / "manifest.json", f"no videos in test_split {name!r} for {split_task}")
    return (name if ids else None), ids


def make_test_dataset(store: FeatureStore, config: Any, tasks: tuple[str, ...], plan: SamplePlan,
                      split: str, ids: list[str]) -> Any:
    """The test split's samples, cut like validation's (every window once, or one sample per clip)."""
    allow = config.allow_incomplete_store
    if plan.mode == "clip":
        return ClipDataset(store, ids, ClipSpec(frames=plan.length, tasks=tasks), split=split, allow_incomplete=allow)
    spec = WindowSpec(mode=plan.mode, length=plan.length, stride=None, tasks=tasks, pad_start=plan.pad_start)
    return WindowDataset(store, ids, spec, split=split, allow_incomplete=allow)


def _too_short(store: FeatureStore, ids: list[str], window: int) -> int:
    """Videos with no frame after a full window (seq2one without padding gives them no sample)."""
    return sum(store.n_frames(v) <= window for v in ids)


def make_sample_datasets(store: FeatureStore, config: Any, tasks: tuple[str, ...]) -> tuple[Any, Any, SamplePlan]:
    """(train dataset, validation dataset, plan) for ``config`` (a ``SequenceTrainConfig``) on ``store``.

    Raises ``InputError`` when a split has no sample, naming the split and the reason.
    """
    train_ids, val_ids, val_labels, split_note = _split_ids(store, config, tasks)
    allow = config.allow_incomplete_store
    mode = resolve_mode(store, config.mode)
    if mode == "clip":
        spec = ClipSpec(frames=config.clip_frames, tasks=tasks)
        train = ClipDataset(store, train_ids, spec, split=config.train_split, allow_incomplete=allow)
        val = ClipDataset(store, val_ids, spec, split=val_labels, allow_incomplete=allow)
        notes = [f"{CLIP_NOTE} ({'clip store' if config.mode == 'auto' else 'mode=clip'}): "
                 f"{config.clip_frames} frames sampled uniformly over each clip, one label per clip "
                 f"({len(train)} train, {len(val)} validation clips)"]
        for name, ds in (("train", train), ("validation", val)):
            if ds.skipped:
                notes.append(f"{len(ds.skipped)} {name} clip(s) have no face or no label and are left out "
                             f"(e.g. {ds.skipped[0]})")
        plan = SamplePlan("clip", config.clip_frames, False, tuple(notes))
    else:
        train, val, plan = _window_datasets(store, config, tasks, mode, train_ids, val_ids, val_labels)
    if split_note:
        plan = dataclasses.replace(plan, notes=(split_note, *plan.notes))
    for note in plan.notes:
        # Each note is a decision the user did not spell out: say it (clip mode itself is the expected default).
        (log.info if note.startswith(CLIP_NOTE) else log.warning)("%s", note)
    _require_samples(store, plan, train, val, config)
    return train, val, plan


def _window_datasets(store: FeatureStore, config: Any, tasks: tuple[str, ...], mode: str,
                     train_ids: list[str], val_ids: list[str], val_labels: str) -> tuple[Any, Any, SamplePlan]:
    """seq2one/seq2seq windows; ``pad_start=None`` (auto) pads only when a split would have no window."""
    allow = config.allow_incomplete_store

    def build(pad_start: bool) -> tuple[WindowDataset, WindowDataset]:
        spec = WindowSpec(mode=mode, length=config.window, stride=config.stride, tasks=tasks, pad_start=pad_start)
        val_spec = WindowSpec(mode=mode, length=config.window, stride=None, tasks=tasks, pad_start=pad_start)
        return (WindowDataset(store, train_ids, spec, split=config.train_split, allow_incomplete=allow),
                WindowDataset(store, val_ids, val_spec, split=val_labels, allow_incomplete=allow))

    pad_start = bool(config.pad_start)
    train, val = build(pad_start)
    notes: list[str] = []
    if mode == "seq2one" and not pad_start:
        short = {"train": _too_short(store, train_ids, config.window),
                 "validation": _too_short(store, val_ids, config.window)}
        if config.pad_start is None and (len(train) == 0 or len(val) == 0):
            empty = "train" if len(train) == 0 else "validation"
            notes.append(f"no {config.window}-frame window in split {empty!r} ({short[empty]} of "
                         f"{len(train_ids if empty == 'train' else val_ids)} videos are shorter than window + 1 "
                         f"frames): training on left-padded windows instead (pad_start=true; set window=N for "
                         f"a shorter window, or pad_start=false to refuse)")
            pad_start = True
            train, val = build(True)
        else:
            for name, n_short in short.items():
                if n_short:
                    notes.append(f"{n_short} {name} video(s) are shorter than window + 1 = {config.window + 1} "
                                 f"frames and give no seq2one window (pad_start=true would use them)")
    return train, val, SamplePlan(mode, config.window, pad_start, tuple(notes))


def _require_samples(store: FeatureStore, plan: SamplePlan, train: Any, val: Any, config: Any) -> None:
    if len(train) and len(val):
        return
    what = "clips" if plan.mode == "clip" else "windows"
    why = ("no clip has both a face and a label" if plan.mode == "clip" else
           "no annotated frame has a face in the frames before it" if plan.pad_start else
           f"are videos shorter than window={config.window}? pad_start=true or a smaller window uses them")
    raise InputError(store.root, f"no {what} to train on ({len(train)} train, {len(val)} validation): {why}")
