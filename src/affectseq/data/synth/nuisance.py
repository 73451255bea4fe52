"""Nuisance of the synthetic benchmark: identity, pose, scale, lighting, blur, noise, occlusion, absence.

Identity is constant per person; pose, position, scale, lighting and blur drift slowly
(Ornstein-Uhlenbeck); geometry noise is independent per frame, which is what makes one
frame ambiguous while a window of frames is not. Occlusion and out-of-view stretches come
in episodes, as in real video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectseq.data.synth.affect import GEOMETRY_NAMES, binary_episodes, ou_process
from affectseq.data.synth.config import SynthConfig


@dataclass(frozen=True)
class Identity:
    """Constant appearance of one person."""

    skin_rgb: tuple[int, int, int]
    hair_rgb: tuple[int, int, int]
    shirt_rgb: tuple[int, int, int]
    iris_rgb: tuple[int, int, int]
    face_aspect: float        # face half-width / half-height
    eye_spacing: float        # multiplier on the default distance between the eyes
    hair_depth: float         # how far the hairline comes down (canonical units)
    geometry_offset: np.ndarray  # float (G,) resting-face offset added to every frame


@dataclass(frozen=True)
class PersonNuisance:
    """Per-frame nuisance of one person (index = ``frame_idx``)."""

    center_xy: np.ndarray      # float (n, 2) face centre in raw-frame pixels
    face_height_px: np.ndarray  # float (n,)
    yaw: np.ndarray            # float (n,) radians
    pitch: np.ndarray          # float (n,)
    roll: np.ndarray           # float (n,)
    present: np.ndarray        # bool (n,) face in view
    mouth_occluded: np.ndarray  # bool (n,)
    eyes_occluded: np.ndarray  # bool (n,)
    has_crop: np.ndarray       # bool (n,) present and found by the (simulated) detector
    geometry_noise: np.ndarray  # float (n, G) independent per-frame noise on the geometry
    align_jitter: np.ndarray   # float (n, 4) aligner error: dx, dy (share of crop), dlog-scale, droll


@dataclass(frozen=True)
class FrameNuisance:
    """Per-frame image degradations of one raw video."""

    gain: np.ndarray        # float (n,) global lighting gain
    side_light: np.ndarray  # float (n,) left-right gradient strength
    blur_sigma: np.ndarray  # float (n,) Gaussian blur sigma in pixels (<0.3: none)
    noise_std: float        # sensor noise std in grey levels


def _colour(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))  # type: ignore[return-value]


def sample_identity(rng: np.random.Generator, cfg: SynthConfig) -> Identity:
    """Draw one person's appearance."""
    tone = rng.uniform(0.35, 1.0)  # light to dark skin, warm hue
    skin = (int(235 * tone + 15), int(190 * tone + 10), int(160 * tone + 5))
    return Identity(
        skin_rgb=skin,
        hair_rgb=_colour(rng, 10, 140),
        shirt_rgb=_colour(rng, 30, 230),
        iris_rgb=_colour(rng, 20, 120),
        face_aspect=float(rng.uniform(0.68, 0.86)),
        eye_spacing=float(rng.uniform(0.88, 1.12)),
        hair_depth=float(rng.uniform(0.0, 0.35)),
        geometry_offset=rng.normal(0.0, cfg.nuisance.identity_offset_std, len(GEOMETRY_NAMES)),
    )


def sample_person_nuisance(
    rng: np.random.Generator, n: int, cfg: SynthConfig, region_center_xy: tuple[float, float], size_scale: float
) -> PersonNuisance:
    """Draw pose, position, occlusion, visibility and detector behaviour of one person."""
    nz, fps = cfg.nuisance, cfg.fps
    tau = nz.pose_tau_sec * fps
    width, height = cfg.frame_width, cfg.frame_height
    face_height = nz.face_height_frac * height * size_scale * np.exp(ou_process(rng, n, tau, nz.scale_std))
    center = np.stack(
        [
            region_center_xy[0] + ou_process(rng, n, tau, nz.position_std * width),
            region_center_xy[1] + ou_process(rng, n, tau, nz.position_std * height),
        ],
        axis=1,
    )
    # Keep most of the head inside the frame (faces at the border still happen, as in real video).
    half = face_height[:, None] * np.array([0.3, 0.4])
    center = np.clip(center, half, np.array([width, height]) - half)
    yaw = ou_process(rng, n, tau, nz.yaw_std)
    pitch = ou_process(rng, n, tau, nz.pitch_std)
    roll = ou_process(rng, n, tau, nz.roll_std)
    present = ~binary_episodes(rng, n, nz.absent_frac, nz.absent_mean_sec * fps)
    mouth_occluded = binary_episodes(rng, n, nz.mouth_occlusion_frac, nz.occlusion_mean_sec * fps)
    eyes_occluded = binary_episodes(rng, n, nz.eye_occlusion_frac, nz.occlusion_mean_sec * fps)
    detected = (rng.random(n) >= nz.crop_dropout_prob) & (np.abs(yaw) <= nz.max_detect_yaw)
    jitter_std = np.array([nz.align_jitter, nz.align_jitter, nz.align_jitter, nz.align_jitter * 2])
    return PersonNuisance(
        center_xy=center,
        face_height_px=face_height,
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        present=present,
        mouth_occluded=mouth_occluded & present,
        eyes_occluded=eyes_occluded & present,
        has_crop=present & detected,
        geometry_noise=rng.normal(0.0, nz.geometry_noise_std, (n, len(GEOMETRY_NAMES))),
        align_jitter=rng.normal(0.0, 1.0, (n, 4)) * jitter_std,
    )


def sample_frame_nuisance(rng: np.random.Generator, n: int, cfg: SynthConfig) -> FrameNuisance:
    """Draw the lighting, blur and sensor noise of one raw video."""
    nz, tau = cfg.nuisance, cfg.nuisance.pose_tau_sec * cfg.fps
    gain = np.clip(1.0 + ou_process(rng, n, tau, nz.brightness_std), 0.35, 1.8)
    side = np.clip(ou_process(rng, n, tau, nz.side_light_std), -0.8, 0.8)
    # Blur drifts faster than pose: focus hunting and motion come in short bursts.
    blur = np.clip(nz.blur_sigma_mean + ou_process(rng, n, tau / 3, nz.blur_sigma_std), 0.0, None)
    return FrameNuisance(
        gain=gain, side_light=side, blur_sigma=blur, noise_std=float(rng.uniform(*nz.pixel_noise_range))
    )
