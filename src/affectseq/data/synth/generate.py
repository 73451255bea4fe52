"""Planning and running a synthetic dataset: splits, two-person videos, task coverage, process pool, summary."""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import yaml

from affectseq.config import config_to_dict
from affectseq.utils.rundir import save_config
from affectseq.data.synth.config import SynthConfig
from affectseq.data.synth.video import PersonPlan, VideoPlan, make_video
from affectseq.data.synth.writer import (
    GROUND_TRUTH_DIR,
    SPLITS,
    STAGING_DIR,
    TASKS,
    annotation_relpath,
    ground_truth_relpath,
    video_relpath,
)
from affectseq.errors import ConfigError
from affectseq.labels import EXPR_CLASSES_8
from affectseq.utils.progress import make_progress

CONFIG_FILE = "synth_config.yaml"


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` made (counts over annotated videos, i.e. each person of a two-person video)."""

    out_dir: Path
    raw_videos: int
    annotated_videos: int
    frames: int
    frames_with_crop: int
    videos_per_task: dict[str, dict[str, int]]
    expr_counts: dict[str, int]
    generated: int
    skipped: int
    elapsed_sec: float
    workers: int
    split_of: dict[str, str] = field(default_factory=dict)
    layout: str = "abaw6"

    @property
    def imbalance_ratio(self) -> float:
        """Largest / smallest annotated EXPR class count (inf when a class has no frame)."""
        counts = list(self.expr_counts.values())
        return max(counts) / min(counts) if min(counts) > 0 else math.inf


def _at_least_one(n: int, fraction: float) -> int:
    if fraction <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, int(round(fraction * n))))


def plan_videos(cfg: SynthConfig) -> list[VideoPlan]:
    """Names, splits, lengths, persons and annotated tasks of every raw video (deterministic for the config)."""
    rng = np.random.default_rng([cfg.seed, 1, 0])
    n = cfg.n_videos
    order = rng.permutation(n)
    val = set(order[: _at_least_one(n, cfg.val_fraction)].tolist())
    two_person = set(rng.permutation(n)[: _at_least_one(n, cfg.two_person_fraction)].tolist())
    jitter = rng.uniform(-1.0, 1.0, n) * cfg.frame_count_jitter
    coverage = rng.random((n, 2, len(TASKS))) < np.asarray(cfg.annotation.task_coverage)
    width = max(3, len(str(n - 1)))
    plans: list[VideoPlan] = []
    for i in range(n):
        name = f"{i:0{width}d}-{cfg.fps}-{cfg.frame_width}x{cfg.frame_height}"
        sides = ("left", "right") if i in two_person else ("",)
        persons = tuple(
            PersonPlan(
                video_id=f"{name}_{side}" if side else name,
                side=side,
                tasks=tuple(t for j, t in enumerate(TASKS) if coverage[i, k, j]),
            )
            for k, side in enumerate(sides)
        )
        n_frames = max(2, int(round(cfg.n_frames * (1.0 + jitter[i]))))
        plans.append(VideoPlan(i, name, SPLITS[1] if i in val else SPLITS[0], n_frames, persons))
    return _ensure_every_task_per_split(plans)


def _ensure_every_task_per_split(plans: list[VideoPlan]) -> list[VideoPlan]:
    # Every split present must have at least one video per task, or downstream stages see empty sets.
    out = list(plans)
    for split in SPLITS:
        members = [i for i, p in enumerate(out) if p.split == split]
        if not members:
            continue
        for task in TASKS:
            if any(task in person.tasks for i in members for person in out[i].persons):
                continue
            first = out[members[0]]
            persons = tuple(
                PersonPlan(p.video_id, p.side, tuple(t for t in TASKS if t in p.tasks or t == task))
                for p in first.persons
            )
            out[members[0]] = VideoPlan(first.index, first.name, first.split, first.n_frames, persons)
    return out


def _check_config_matches(out_dir: Path, cfg: SynthConfig) -> None:
    saved_path = out_dir / CONFIG_FILE
    if not saved_path.exists():
        return
    saved = yaml.safe_load(saved_path.read_text(encoding="utf-8"))
    saved.setdefault("layout", "abaw6")  # folders made before the layout knob existed
    wanted = yaml.safe_load(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    if saved != wanted:
        changed = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
        raise ConfigError(
            f"{saved_path}: this folder was made with a different synthetic config "
            f"(differs in: {', '.join(changed)}); choose a new output folder"
        )


def generate(
    out_dir: str | os.PathLike[str],
    config: SynthConfig | None = None,
    workers: int | None = None,
    show_progress: bool | None = None,
) -> SynthSummary:
    """Write a synthetic Aff-Wild2-like dataset (``config.layout``: ABAW 6 or video_csv) to ``out_dir``.

    Videos already finished in ``out_dir`` (by an earlier, possibly killed, run with the same
    config) are skipped. ``workers`` processes render videos in parallel (default: the CPUs
    available, at most the number of videos left); the output does not depend on it.
    """
    cfg = config or SynthConfig()
    out = Path(out_dir)
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    _check_config_matches(out, cfg)
    save_config(cfg, out / CONFIG_FILE)
    if cfg.layout == "clip_folders":
        return generate_clips(out, cfg, workers, show_progress, start)
    plans = plan_videos(cfg)
    todo = [p for p in plans if not all(path.exists() for path in p.ground_truth_paths(out))]
    _make_output_dirs(out, cfg, todo)
    n_workers = max(1, min(workers or len(os.sched_getaffinity(0)), len(todo) or 1))
    with make_progress(disable=None if show_progress is None else not show_progress) as progress:
        task = progress.add_task("synthetic videos", total=len(todo))
        if n_workers == 1:
            import cv2

            threads = cv2.getNumThreads()
            cv2.setNumThreads(1)  # OpenCV's own threads cost more CPU than they save on these small frames
            try:
                for plan in todo:
                    make_video(out, cfg, plan)
                    progress.advance(task)
            finally:
                cv2.setNumThreads(threads)
        else:
            with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
                futures = [pool.submit(make_video, out, cfg, plan) for plan in todo]
                for future in as_completed(futures):
                    future.result()
                    progress.advance(task)
    try:
        (out / STAGING_DIR).rmdir()
    except OSError:
        pass  # absent, or holds leftovers of another run writing here
    return summarise(out, plans, generated=len(todo), elapsed_sec=time.perf_counter() - start, workers=n_workers,
                     crops=cfg.write_crops and cfg.layout == "abaw6")


def generate_clips(out: Path, cfg: SynthConfig, workers: int | None, show_progress: bool | None,
                   start: float) -> SynthSummary:
    """The ``clip_folders`` layout (:mod:`affectseq.data.synth.clips`): clips not yet written, then ``clips.csv``."""
    from affectseq.data.synth.clips import make_clip, plan_clips, write_clip_list

    plans = plan_clips(cfg)
    todo = [p for p in plans if not (out / p.relpath()).is_file()]
    n_workers = max(1, min(workers or len(os.sched_getaffinity(0)), len(todo) or 1))
    with make_progress(disable=None if show_progress is None else not show_progress) as progress:
        task = progress.add_task("synthetic clips", total=len(todo))
        if n_workers == 1:
            for plan in todo:
                make_clip(out, cfg, plan)
                progress.advance(task)
        else:
            with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
                for future in as_completed([pool.submit(make_clip, out, cfg, plan) for plan in todo]):
                    future.result()
                    progress.advance(task)
    write_clip_list(out, plans)
    counts = np.zeros(len(EXPR_CLASSES_8), np.int64)
    per_split = {split: 0 for split in ("train", "validation")}
    for plan in plans:
        counts[plan.expr] += plan.n_frames
        per_split[plan.split] += 1
    return SynthSummary(
        out_dir=out, raw_videos=len(plans), annotated_videos=len(plans), frames=int(counts.sum()),
        frames_with_crop=0, videos_per_task={"EXPR": per_split},
        expr_counts={c: int(counts[EXPR_CLASSES_8.index(c)]) for c in cfg.clip_classes},
        generated=len(todo), skipped=len(plans) - len(todo), elapsed_sec=time.perf_counter() - start,
        workers=n_workers, split_of={p.relpath().stem: p.split for p in plans}, layout="clip_folders",
    )


def _make_output_dirs(out: Path, cfg: SynthConfig, plans: list[VideoPlan]) -> None:
    # Created once here, so committing a video needs no mkdir (slow on busy file systems);
    # only folders that will hold files, so a split or task without videos leaves no empty folder.
    folders = {Path(STAGING_DIR), Path(GROUND_TRUTH_DIR)}
    if cfg.write_videos:
        folders |= {video_relpath(cfg.layout, p.split, p.name).parent for p in plans}
    if cfg.layout == "abaw6":  # video_csv: the CSVs sit beside their videos, and there are no crops
        folders |= {annotation_relpath(t, p.split, q.video_id).parent for p in plans for q in p.persons
                    for t in q.tasks}
        if cfg.write_crops and plans:
            folders.add(Path("cropped_aligned"))
    for folder in sorted(folders):
        (out / folder).mkdir(parents=True, exist_ok=True)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # parallelism comes from the pool; avoid oversubscribing the cores


def summarise(out: Path, plans: list[VideoPlan], generated: int, elapsed_sec: float, workers: int,
              crops: bool = True) -> SynthSummary:
    """Counts over the ground truth of ``plans`` (annotated EXPR frames per class, crops, videos per task).

    ``crops``: whether crops were written (frames with a crop count 0 otherwise).
    """
    expr_counts = np.zeros(len(EXPR_CLASSES_8), dtype=np.int64)
    videos_per_task = {task: {split: 0 for split in SPLITS} for task in TASKS}
    frames = frames_with_crop = 0
    split_of: dict[str, str] = {}
    for plan in plans:
        for person in plan.persons:
            with np.load(out / ground_truth_relpath(person.video_id)) as gt:
                annotated_expr = gt["annotated"][TASKS.index("EXPR")]
                expr_counts += np.bincount(gt["expr"][annotated_expr], minlength=len(EXPR_CLASSES_8))
                frames += int(gt["expr"].shape[0])
                frames_with_crop += int(gt["has_crop"].sum()) if crops else 0
            for task in person.tasks:
                videos_per_task[task][plan.split] += 1
            split_of[person.video_id] = plan.split
    return SynthSummary(
        out_dir=out,
        raw_videos=len(plans),
        annotated_videos=sum(len(p.persons) for p in plans),
        frames=frames,
        frames_with_crop=frames_with_crop,
        videos_per_task=videos_per_task,
        expr_counts=dict(zip(EXPR_CLASSES_8, expr_counts.tolist())),
        generated=generated,
        skipped=len(plans) - generated,
        elapsed_sec=elapsed_sec,
        workers=workers,
        split_of=split_of,
    )
