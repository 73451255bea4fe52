"""The latent affect process of one synthetic person: expression regimes, valence/arousal, face geometry, AUs.

Expressions are a semi-Markov chain of episodes (regimes) with class-specific dwell times;
valence/arousal follow an Ornstein-Uhlenbeck process pulled towards the current regime's
place on the circumplex, then low-pass filtered so traces are smooth. The clean face geometry
(what the face "really does") moves towards the regime's prototype with an onset time constant
and is also shaped by valence/arousal; action units are read off the clean geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affectseq.data.synth.config import AffectConfig

GEOMETRY_NAMES: tuple[str, ...] = (
    "mouth_curve",   # + corners up (smile), - down
    "mouth_open",    # 0 closed .. 1 jaw dropped
    "mouth_width",   # + stretched, - pressed/pursed
    "mouth_asym",    # one-sided smirk
    "brow_raise",    # + raised, - lowered
    "brow_tilt",     # + inner ends up (sad/fear), - inner ends down (anger)
    "eye_open",      # + wide, - narrowed
    "nose_wrinkle",  # 0 .. 1
)

# Prototype geometry per class (rows follow EXPR_CLASSES_8), loosely after FACS descriptions.
# Classes overlap on purpose (Fear/Surprise share raised brows and wide eyes; Anger/Disgust
# share lowered brows) so that per-frame noise makes them hard to separate.
PROTOTYPES = np.array(
    [
        [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00],    # Neutral
        [-0.35, 0.05, -0.60, 0.00, -0.80, -0.90, -0.30, 0.20],  # Anger
        [-0.60, 0.25, -0.20, 0.30, -0.50, -0.30, -0.50, 1.00],  # Disgust
        [-0.25, 0.45, 0.70, 0.00, 0.60, 0.80, 0.90, 0.00],   # Fear
        [1.00, 0.30, 0.50, 0.00, 0.10, 0.00, -0.35, 0.00],   # Happiness
        [-0.85, 0.00, -0.10, 0.00, -0.10, 0.85, -0.40, 0.00],  # Sadness
        [0.00, 0.90, -0.35, 0.00, 1.00, 0.10, 1.00, 0.00],   # Surprise
        [0.30, 0.05, 0.10, 0.90, 0.20, -0.20, -0.10, 0.00],  # Other (smirk)
    ],
    dtype=np.float64,
)

# How valence and arousal move each geometry parameter (scaled by ``va_geometry_gain``).
_VA_LOADINGS = np.array(
    [[1.0, 0.0], [0.0, 0.5], [0.0, 0.0], [0.0, 0.0], [0.0, 0.5], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
)

# ABAW 3+ action units, each a rule on the clean geometry (column order = AU_NAMES_ABAW3).
_AU_RULES: tuple[tuple[str, str, str, float], ...] = (
    ("AU1", "brow_tilt", ">", 0.35),
    ("AU2", "brow_raise", ">", 0.40),
    ("AU4", "brow_raise", "<", -0.35),
    ("AU6", "mouth_curve", ">", 0.55),
    ("AU7", "eye_open", "<", -0.30),
    ("AU10", "nose_wrinkle", ">", 0.40),
    ("AU12", "mouth_curve", ">", 0.30),
    ("AU15", "mouth_curve", "<", -0.35),
    ("AU23", "mouth_width", "<", -0.30),
    ("AU24", "mouth_width", "<", -0.45),
    ("AU25", "mouth_open", ">", 0.15),
    ("AU26", "mouth_open", ">", 0.50),
)


@dataclass(frozen=True)
class AffectTrack:
    """Latent state of one person over ``n`` frames (index = ``frame_idx``)."""

    expr: np.ndarray          # int64 (n,) class index into EXPR_CLASSES_8
    intensity: np.ndarray     # float32 (n,) expression intensity of the current episode
    va: np.ndarray            # float32 (n, 2) valence, arousal in [-1, 1]
    geometry: np.ndarray      # float32 (n, G) clean face geometry (GEOMETRY_NAMES)
    au: np.ndarray            # int8 (n, 12) ABAW3 AUs, 0/1


def _recursive(x: np.ndarray, a: float, init: np.ndarray | float) -> np.ndarray:
    """``y[t] = a * y[t-1] + x[t]`` along axis 0 with ``y[-1] = init`` (a first-order IIR filter).

    A plain loop: scipy.signal.lfilter would do, but importing scipy.signal costs seconds in
    every worker process, more than the filtering itself.
    """
    x2 = np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)
    starts = np.broadcast_to(np.asarray(init, dtype=np.float64).ravel(), (x2.shape[1],))
    out = np.empty_like(x2)
    for j in range(x2.shape[1]):  # Python floats: several times faster than numpy scalars per step
        prev, column = float(starts[j]), x2[:, j].tolist()
        for t, value in enumerate(column):
            prev = a * prev + value
            column[t] = prev
        out[:, j] = column
    return out.reshape(x.shape)


def ou_process(rng: np.random.Generator, n: int, tau_frames: float, std: float) -> np.ndarray:
    """Stationary zero-mean Ornstein-Uhlenbeck samples at unit frame steps (exact discretisation)."""
    phi = float(np.exp(-1.0 / max(tau_frames, 1e-6)))
    eps = rng.standard_normal(n) * std * np.sqrt(1.0 - phi * phi)
    # Start in the stationary distribution so the first frames look like the rest.
    return _recursive(eps, phi, rng.standard_normal() * std)


def low_pass(x: np.ndarray, tau_frames: float) -> np.ndarray:
    """First-order causal low-pass along axis 0, started at ``x[0]`` (no warm-up transient)."""
    if tau_frames <= 0:
        return x.astype(np.float64)
    a = float(np.exp(-1.0 / tau_frames))
    return _recursive((1.0 - a) * np.asarray(x, dtype=np.float64), a, x[0])


def binary_episodes(rng: np.random.Generator, n: int, on_frac: float, mean_on_frames: float) -> np.ndarray:
    """Boolean (n,) mask made of "on" episodes covering about ``on_frac`` of the frames."""
    mask = np.zeros(n, dtype=bool)
    if on_frac <= 0:
        return mask
    mean_off = mean_on_frames * (1.0 - on_frac) / on_frac
    on = rng.random() < on_frac
    t = 0
    while t < n:
        length = max(1, int(round(rng.exponential(mean_on_frames if on else mean_off))))
        if on:
            mask[t : t + length] = True
        t += length
        on = not on
    return mask


def sample_regimes(rng: np.random.Generator, n: int, cfg: AffectConfig, fps: float) -> tuple[np.ndarray, ...]:
    """Expression episodes: per-frame class, intensity and VA target.

    Episode classes are drawn with probability proportional to ``share / mean_dwell`` so that
    the expected share of *frames* per class equals ``class_shares``.
    """
    shares = np.asarray(cfg.class_shares, dtype=np.float64)
    dwell = np.asarray(cfg.mean_dwell_sec, dtype=np.float64) * fps
    p_start = shares / dwell
    p_start /= p_start.sum()
    centroids = np.asarray(cfg.va_centroids, dtype=np.float64)
    min_frames = max(1, int(round(cfg.min_dwell_sec * fps)))
    expr = np.empty(n, dtype=np.int64)
    intensity = np.empty(n, dtype=np.float64)
    va_target = np.empty((n, 2), dtype=np.float64)
    t = 0
    while t < n:
        k = int(rng.choice(len(shares), p=p_start))
        length = max(min_frames, int(round(rng.gamma(cfg.dwell_shape, dwell[k] / cfg.dwell_shape))))
        stop = min(n, t + length)
        expr[t:stop] = k
        intensity[t:stop] = rng.uniform(*cfg.intensity_range)
        va_target[t:stop] = np.clip(centroids[k] + rng.normal(0, cfg.va_centroid_jitter, 2), -0.95, 0.95)
        t = stop
    return expr, intensity, va_target


def sample_affect(rng: np.random.Generator, n: int, cfg: AffectConfig, fps: float) -> AffectTrack:
    """Draw one person's latent affect for ``n`` frames."""
    expr, intensity, va_target = sample_regimes(rng, n, cfg, fps)
    tau_va = cfg.va_tau_sec * fps
    # Mean-reverting pull towards the regime target plus stationary OU fluctuation, then smoothing.
    pulled = low_pass(va_target, tau_va)
    noise = np.stack([ou_process(rng, n, tau_va, cfg.va_std) for _ in range(2)], axis=1)
    va = np.clip(low_pass(pulled + noise, cfg.va_smooth_sec * fps), -1.0, 1.0)

    target_geometry = PROTOTYPES[expr] * intensity[:, None]
    geometry = low_pass(target_geometry, cfg.onset_sec * fps)
    geometry = geometry + cfg.va_geometry_gain * va @ _VA_LOADINGS.T
    geometry[:, GEOMETRY_NAMES.index("mouth_open")] = np.clip(geometry[:, 1], 0.0, None)
    geometry[:, GEOMETRY_NAMES.index("nose_wrinkle")] = np.clip(geometry[:, 7], 0.0, None)
    return AffectTrack(
        expr=expr,
        intensity=intensity.astype(np.float32),
        va=va.astype(np.float32),
        geometry=geometry.astype(np.float32),
        au=action_units(geometry),
    )


def action_units(geometry: np.ndarray) -> np.ndarray:
    """ABAW3 AU activations (int8 (n, 12), 0/1) read off the clean geometry by fixed rules."""
    out = np.zeros((geometry.shape[0], len(_AU_RULES)), dtype=np.int8)
    for j, (_, param, op, threshold) in enumerate(_AU_RULES):
        values = geometry[:, GEOMETRY_NAMES.index(param)]
        out[:, j] = (values > threshold) if op == ">" else (values < threshold)
    return out


AU_COLUMNS: tuple[str, ...] = tuple(rule[0] for rule in _AU_RULES)
