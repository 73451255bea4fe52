"""Rendering one synthetic raw video and all its outputs (crops, annotations, ground truth).

One call of :func:`make_video` is self-contained and seeded by ``(seed, video index)`` alone,
so videos can be made in any order, in parallel, and resumed, with identical results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from affectseq.data.synth.affect import AU_COLUMNS, GEOMETRY_NAMES, AffectTrack, binary_episodes, sample_affect
from affectseq.data.synth.config import SynthConfig
from affectseq.data.synth.nuisance import (
    Identity,
    PersonNuisance,
    sample_frame_nuisance,
    sample_identity,
    sample_person_nuisance,
)
from affectseq.data.synth.render import FrameDegrader, Pose, align_crop, draw_face, make_background
from affectseq.data.synth.writer import (
    TASKS,
    Mp4Writer,
    StagedVideo,
    annotation_relpath,
    format_au,
    format_expr,
    format_va,
    format_video_csv,
    ground_truth_relpath,
    video_relpath,
)


@dataclass(frozen=True)
class PersonPlan:
    """One annotated person of a raw video (``side`` is '' for single-person videos)."""

    video_id: str
    side: str
    tasks: tuple[str, ...]


@dataclass(frozen=True)
class VideoPlan:
    """What to make for one raw video."""

    index: int
    name: str
    split: str
    n_frames: int
    persons: tuple[PersonPlan, ...]

    def ground_truth_paths(self, out_dir: Path) -> list[Path]:
        """The files whose existence marks this video as done."""
        return [out_dir / ground_truth_relpath(p.video_id) for p in self.persons]


def video_rng(cfg: SynthConfig, index: int) -> np.random.Generator:
    """The random stream of raw video ``index`` (independent of every other video)."""
    return np.random.default_rng([cfg.seed, 0, index])


def _layout(n_persons: int, cfg: SynthConfig) -> list[tuple[tuple[float, float], float]]:
    w, h = cfg.frame_width, cfg.frame_height
    if n_persons == 1:
        return [((w / 2.0, h * 0.48), 1.0)]
    return [((w / 4.0, h * 0.5), 0.75), ((3.0 * w / 4.0, h * 0.5), 0.75)]


@dataclass(frozen=True)
class Person:
    """Everything random about one person except pixels."""

    identity: Identity
    affect: AffectTrack
    nuisance: PersonNuisance
    observed: np.ndarray                 # float32 (n, G) geometry as drawn: latent + resting offset + noise
    annotated: dict[str, np.ndarray]     # task -> bool (n,) rows with a label


def sample_person(
    rng: np.random.Generator,
    n: int,
    cfg: SynthConfig,
    region_center_xy: tuple[float, float],
    size_scale: float,
    tasks: tuple[str, ...] = TASKS,
) -> Person:
    """Draw one person: identity, latent affect, nuisance, observed geometry and per-task annotation masks."""
    identity = sample_identity(rng, cfg)
    affect = sample_affect(rng, n, cfg.affect, cfg.fps)
    nuisance = sample_person_nuisance(rng, n, cfg, region_center_xy, size_scale)
    observed = (affect.geometry + identity.geometry_offset + nuisance.geometry_noise).astype(np.float32)
    an = cfg.annotation
    annotated = {
        task: (task in tasks) & ~binary_episodes(rng, n, an.unannotated_frac, an.unannotated_mean_sec * cfg.fps)
        for task in TASKS
    }
    return Person(identity, affect, nuisance, observed, annotated)


def make_video(out_dir: Path, cfg: SynthConfig, plan: VideoPlan) -> None:
    """Render ``plan`` and move its outputs into ``out_dir`` (atomically, ground truth last)."""
    rng = video_rng(cfg, plan.index)
    n = plan.n_frames
    people = [
        sample_person(rng, n, cfg, region, size, person.tasks)
        for person, (region, size) in zip(plan.persons, _layout(len(plan.persons), cfg))
    ]
    staged = StagedVideo(out_dir, plan.name)
    try:
        # The video_csv layout has no crops: users' own recordings come without them.
        with_crops = cfg.write_crops and cfg.layout == "abaw6"
        crop_dirs = [Path("cropped_aligned") / p.video_id for p in plan.persons] if with_crops else []
        boxes = [np.full((n, 4), np.nan, np.float32) for _ in people]
        landmarks = [np.full((n, 5, 2), np.nan, np.float32) for _ in people]
        if cfg.write_videos or cfg.write_crops:
            _render(rng, cfg, plan, people, staged, crop_dirs, boxes, landmarks)
        for k, (plan_k, person) in enumerate(zip(plan.persons, people)):
            _write_labels(staged, cfg, plan, plan_k, person, boxes[k], landmarks[k])
        staged.commit([ground_truth_relpath(p.video_id) for p in plan.persons])
    except BaseException:
        staged.discard()
        raise


def _render(
    rng: np.random.Generator,
    cfg: SynthConfig,
    plan: VideoPlan,
    people: list[Person],
    staged: StagedVideo,
    crop_dirs: list[Path],
    boxes: list[np.ndarray],
    landmarks: list[np.ndarray],
) -> None:
    """Draw every frame, stream it into the mp4 and cut the crops; fills ``boxes``/``landmarks``."""
    frame_nz = sample_frame_nuisance(rng, plan.n_frames, cfg)
    background = make_background(rng, cfg.frame_width, cfg.frame_height)
    degrader = FrameDegrader(rng, cfg.frame_height, cfg.frame_width, frame_nz.noise_std)
    for rel in crop_dirs:
        staged.path(rel).mkdir()
    writer = None
    if cfg.write_videos:
        writer = Mp4Writer(staged.path(video_relpath(cfg.layout, plan.split, plan.name)),
                           cfg.frame_width, cfg.frame_height, cfg.fps, cfg.video_crf, cfg.video_preset)
    jpeg_params = [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]
    for frame_idx in range(plan.n_frames):
        canvas = background.copy()
        poses: list[Pose | None] = []
        for k, person in enumerate(people):
            nz = person.nuisance
            if not nz.present[frame_idx]:
                poses.append(None)
                continue
            pose = Pose(
                center_xy=(float(nz.center_xy[frame_idx, 0]), float(nz.center_xy[frame_idx, 1])),
                face_height_px=float(nz.face_height_px[frame_idx]),
                yaw=float(nz.yaw[frame_idx]), pitch=float(nz.pitch[frame_idx]), roll=float(nz.roll[frame_idx]),
            )
            boxes[k][frame_idx], landmarks[k][frame_idx] = draw_face(
                canvas, person.identity, person.observed[frame_idx], pose,
                bool(nz.mouth_occluded[frame_idx]), bool(nz.eyes_occluded[frame_idx]),
            )
            poses.append(pose)
        frame = degrader.apply(canvas, float(frame_nz.gain[frame_idx]), float(frame_nz.side_light[frame_idx]),
                               float(frame_nz.blur_sigma[frame_idx]), rng)
        if writer is not None:
            writer.write(frame)
        for k, person in enumerate(people):
            pose = poses[k]
            if not crop_dirs or pose is None or not person.nuisance.has_crop[frame_idx]:
                continue
            crop = align_crop(frame, pose, person.nuisance.align_jitter[frame_idx], cfg.crop_size)
            ok, encoded = cv2.imencode(".jpg", crop[:, :, ::-1], jpeg_params)
            if not ok:
                raise RuntimeError("OpenCV failed to encode a JPEG crop")
            (staged.path(crop_dirs[k]) / f"{frame_idx + 1:05d}.jpg").write_bytes(encoded.tobytes())
    if writer is not None:
        writer.close()


def _write_labels(
    staged: StagedVideo, cfg: SynthConfig, plan: VideoPlan, person_plan: PersonPlan, person: Person,
    box: np.ndarray, landmarks: np.ndarray,
) -> None:
    """Annotation files of the person's tasks and its ground-truth archive."""
    affect, nz, annotated = person.affect, person.nuisance, person.annotated
    video_path = video_relpath(cfg.layout, plan.split, plan.name)
    if cfg.layout == "video_csv":
        text = format_video_csv(person_plan.tasks, {"EXPR": affect.expr, "VA": affect.va, "AU": affect.au},
                                annotated, cfg.annotation.va_decimals)
        staged.path(video_path.with_suffix(".csv")).write_text(text, encoding="utf-8")
    for task in person_plan.tasks if cfg.layout == "abaw6" else ():
        if task == "VA":
            text = format_va(affect.va, annotated["VA"], cfg.annotation.va_decimals)
        elif task == "EXPR":
            text = format_expr(affect.expr, annotated["EXPR"])
        else:
            text = format_au(affect.au, annotated["AU"])
        staged.path(annotation_relpath(task, plan.split, person_plan.video_id)).write_text(text, encoding="utf-8")
    with open(staged.path(ground_truth_relpath(person_plan.video_id)), "wb") as fh:
        np.savez_compressed(
            fh,
            expr=affect.expr, intensity=affect.intensity, va=affect.va, au=affect.au,
            geometry=affect.geometry, geometry_observed=person.observed,
            geometry_names=np.array(GEOMETRY_NAMES), au_names=np.array(AU_COLUMNS),
            present=nz.present, has_crop=nz.has_crop, mouth_occluded=nz.mouth_occluded, eyes_occluded=nz.eyes_occluded,
            yaw=nz.yaw.astype(np.float32), pitch=nz.pitch.astype(np.float32), roll=nz.roll.astype(np.float32),
            box=box, landmarks=landmarks,
            annotated=np.stack([annotated[t] for t in TASKS]), tasks=np.array(TASKS),
            covered_tasks=np.array(person_plan.tasks, dtype=str),
            split=np.array(plan.split), side=np.array(person_plan.side),
            source_video=np.array(video_path.as_posix()), fps=np.array(cfg.fps),
        )
