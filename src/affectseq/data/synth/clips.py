"""A synthetic clip dataset in the ``clip_folders`` layout: one expression per short clip (``data synth --layout
clip_folders``).

Each clip shows one rendered person (the faces, nuisance and degradations of the frame-level generator)
whose face moves from neutral to one expression (onset ``affect.onset_sec``, as posed-expression clips
do) and stays there, so the clip's label is known: ``OUT/<train|validation>/<class>/<clip>.mp4``, the
class folders named by ``clip_classes`` (lower case). Clip ``i`` shows class ``i mod len(clip_classes)``
and draws from ``numpy.random.default_rng([seed, 2, i])`` alone, so clips can be made in any order and
resumed. ``OUT/clips.csv`` lists every clip (``video,label,split``: the ``clip_list`` layout of the same
clips) and ``OUT/synth_config.yaml`` the config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectseq.data.synth.affect import _VA_LOADINGS, PROTOTYPES, low_pass
from affectseq.data.synth.config import SynthConfig
from affectseq.data.synth.nuisance import sample_frame_nuisance, sample_identity, sample_person_nuisance
from affectseq.data.synth.render import FrameDegrader, Pose, draw_face, make_background
from affectseq.data.synth.writer import Mp4Writer
from affectseq.labels import EXPR_CLASSES_8

CLIP_SPLITS: tuple[str, ...] = ("train", "validation")
CLIP_LIST_FILE = "clips.csv"


@dataclass(frozen=True)
class ClipPlan:
    """One clip: its index (seed), class, split and length."""

    index: int
    expr: int  # index into EXPR_CLASSES_8
    split: str
    n_frames: int

    def relpath(self) -> Path:
        """``<split>/<class>/clip_<index>.mp4``."""
        return Path(self.split) / EXPR_CLASSES_8[self.expr].lower() / f"clip_{self.index:04d}.mp4"


def plan_clips(cfg: SynthConfig) -> list[ClipPlan]:
    """Classes in turn; per class, ``val_fraction`` of its clips (at least one of two or more) in validation."""
    rng = np.random.default_rng([cfg.seed, 3, 0])
    classes = [EXPR_CLASSES_8.index(c) for c in cfg.clip_classes]
    jitter = rng.uniform(-1.0, 1.0, cfg.n_videos) * cfg.frame_count_jitter
    plans = []
    for i in range(cfg.n_videos):
        k = i % len(classes)
        rank, of_class = i // len(classes), len(range(k, cfg.n_videos, len(classes)))
        n_val = 0 if of_class < 2 else max(1, int(round(cfg.val_fraction * of_class)))
        split = CLIP_SPLITS[1] if rank < n_val else CLIP_SPLITS[0]
        plans.append(ClipPlan(i, classes[k], split, max(2, int(round(cfg.n_frames * (1.0 + jitter[i]))))))
    return plans


def clip_geometry(rng: np.random.Generator, cfg: SynthConfig, expr: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(geometry (n, G), va (n, 2))`` of a face going from neutral to ``expr`` and holding it."""
    a = cfg.affect
    intensity = rng.uniform(*a.intensity_range)
    target = np.repeat(PROTOTYPES[expr][None] * intensity, n, axis=0)
    start = np.concatenate([PROTOTYPES[0][None], target])  # frame -1 is neutral: the onset starts there
    geometry = low_pass(start, a.onset_sec * cfg.fps)[1:]
    centroid = np.asarray(a.va_centroids[expr]) + rng.normal(0, a.va_centroid_jitter, 2)
    va = np.clip(np.repeat(centroid[None], n, axis=0), -0.95, 0.95)
    geometry = geometry + a.va_geometry_gain * va @ _VA_LOADINGS.T
    geometry[:, 1] = np.clip(geometry[:, 1], 0.0, None)  # mouth_open
    geometry[:, 7] = np.clip(geometry[:, 7], 0.0, None)  # nose_wrinkle
    return geometry, va


def make_clip(out_dir: Path, cfg: SynthConfig, plan: ClipPlan) -> None:
    """Render one clip to ``out_dir / plan.relpath()`` (written under a temporary name, then moved)."""
    rng = np.random.default_rng([cfg.seed, 2, plan.index])
    n = plan.n_frames
    identity = sample_identity(rng, cfg)
    geometry, _ = clip_geometry(rng, cfg, plan.expr, n)
    nz = sample_person_nuisance(rng, n, cfg, (cfg.frame_width / 2.0, cfg.frame_height * 0.48), 1.0)
    observed = geometry + identity.geometry_offset + nz.geometry_noise
    frame_nz = sample_frame_nuisance(rng, n, cfg)
    background = make_background(rng, cfg.frame_width, cfg.frame_height)
    degrader = FrameDegrader(rng, cfg.frame_height, cfg.frame_width, frame_nz.noise_std)
    target = out_dir / plan.relpath()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.partial.mp4")
    writer = Mp4Writer(partial, cfg.frame_width, cfg.frame_height, cfg.fps, cfg.video_crf, cfg.video_preset)
    with writer:
        for t in range(n):
            canvas = background.copy()
            if nz.present[t]:
                pose = Pose(center_xy=(float(nz.center_xy[t, 0]), float(nz.center_xy[t, 1])),
                            face_height_px=float(nz.face_height_px[t]), yaw=float(nz.yaw[t]),
                            pitch=float(nz.pitch[t]), roll=float(nz.roll[t]))
                draw_face(canvas, identity, observed[t], pose, bool(nz.mouth_occluded[t]), bool(nz.eyes_occluded[t]))
            writer.write(degrader.apply(canvas, float(frame_nz.gain[t]), float(frame_nz.side_light[t]),
                                        float(frame_nz.blur_sigma[t]), rng))
    os.replace(partial, target)


def write_clip_list(out_dir: Path, plans: list[ClipPlan]) -> Path:
    """``OUT/clips.csv``: ``video,label,split`` per clip (paths relative to OUT)."""
    from affectseq.utils.atomic import write_text_atomic

    rows = ["video,label,split"] + [f"{p.relpath().as_posix()},{EXPR_CLASSES_8[p.expr]},{p.split}" for p in plans]
    path = out_dir / CLIP_LIST_FILE
    write_text_atomic(path, "\n".join(rows) + "\n")
    return path
