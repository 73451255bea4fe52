"""Every knob of the synthetic Aff-Wild2-like benchmark, in one frozen config (:class:`SynthConfig`).

Load it with ``affectseq.config.load_config(SynthConfig, yaml_path, ["affect.onset_sec=0.3", ...])``.
The resolved config is saved beside the data as ``synth_config.yaml``; a rerun into the same
folder must use the same config (it resumes, skipping finished videos).

Times are given in seconds (``*_sec``) and converted to frames with ``fps``; fractions are
shares of frames; angles are radians. Per-class tuples follow ``affectseq.labels.EXPR_CLASSES_8``
(Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise, Other).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from affectseq.errors import ConfigError
from affectseq.labels import EXPR_CLASSES_8

# Frame shares loosely follow Aff-Wild2's EXPR set: Neutral and Happiness dominate, Fear and
# Disgust are rare; Other is kept rare here (ABAW's Other is large, but a rare eighth class is
# the harder, more useful test). Largest/smallest = 0.40/0.015 ~ 27.
# Output layouts: the ABAW 6 tree, or users' own videos with per-frame CSVs (affectseq.data.video_csv).
LAYOUTS: tuple[str, ...] = ("abaw6", "video_csv", "clip_folders")
# Classes of the clip_folders layout (one expression per clip): contrasting ones, so short clips separate.
DEFAULT_CLIP_CLASSES = ("Neutral", "Anger", "Happiness", "Sadness", "Surprise")
DEFAULT_CLASS_SHARES = (0.40, 0.07, 0.015, 0.015, 0.27, 0.12, 0.08, 0.03)
# Mean episode length per class: calm states last longer than startle-like ones.
DEFAULT_DWELL_SEC = (3.0, 1.6, 1.2, 1.2, 2.5, 2.2, 1.0, 1.5)
# Where each expression sits on the valence/arousal circumplex (Russell 1980, roughly).
DEFAULT_VA_CENTROIDS = (
    (0.05, -0.05),   # Neutral
    (-0.55, 0.60),   # Anger
    (-0.60, 0.30),   # Disgust
    (-0.45, 0.70),   # Fear
    (0.60, 0.35),    # Happiness
    (-0.55, -0.35),  # Sadness
    (0.25, 0.70),    # Surprise
    (-0.15, -0.15),  # Other
)


@dataclass(frozen=True)
class AffectConfig:
    """The latent affect process: expression regimes and valence/arousal (see ``affect.py``)."""

    class_shares: tuple[float, ...] = DEFAULT_CLASS_SHARES
    """Expected share of frames per expression class (8 values, normalised)."""
    mean_dwell_sec: tuple[float, ...] = DEFAULT_DWELL_SEC
    """Mean length of one expression episode per class, seconds."""
    dwell_shape: float = 2.0
    """Gamma shape of episode lengths (1 = exponential; larger = more regular)."""
    min_dwell_sec: float = 0.4
    """Shortest episode, seconds."""
    intensity_range: tuple[float, float] = (0.45, 1.0)
    """Expression intensity per episode, drawn uniformly (scales the class prototype geometry)."""
    onset_sec: float = 0.25
    """Time constant with which the face moves to a new expression (onset/offset), seconds."""
    va_centroids: tuple[tuple[float, float], ...] = DEFAULT_VA_CENTROIDS
    """Valence/arousal that each class pulls towards."""
    va_centroid_jitter: float = 0.12
    """Std of the per-episode offset of the VA target from its class centroid."""
    va_tau_sec: float = 0.4
    """Mean-reversion time of the valence/arousal Ornstein-Uhlenbeck process, seconds."""
    va_std: float = 0.12
    """Stationary std of the OU fluctuation around the target."""
    va_smooth_sec: float = 0.2
    """Extra low-pass time constant that makes VA traces smooth at frame level, seconds."""
    va_geometry_gain: float = 0.35
    """How strongly valence (mouth curve) and arousal (eyes, brows, mouth opening) move the face."""


@dataclass(frozen=True)
class NuisanceConfig:
    """Per-person and per-frame nuisance that makes single frames ambiguous (see ``nuisance.py``)."""

    geometry_noise_std: float = 0.3
    """Std of independent per-frame noise on every face-geometry parameter (prototype scale ~1).
    Independent across frames, so averaging over time recovers the expression."""
    identity_offset_std: float = 0.15
    """Std of each person's constant resting-face offset on the geometry parameters."""
    face_height_frac: float = 0.42
    """Mean face height as a share of the frame height (single-person videos)."""
    scale_std: float = 0.1
    """Relative std of the slowly varying face scale."""
    position_std: float = 0.08
    """Std of the face centre's slow drift, as a share of the frame size."""
    yaw_std: float = 0.35
    """Std of head yaw, radians (slowly varying)."""
    pitch_std: float = 0.12
    """Std of head pitch, radians."""
    roll_std: float = 0.12
    """Std of in-plane head roll, radians."""
    pose_tau_sec: float = 1.5
    """Correlation time of pose, position and scale, seconds."""
    brightness_std: float = 0.18
    """Std of the global lighting gain around 1 (slowly varying)."""
    side_light_std: float = 0.25
    """Std of the left-right lighting gradient strength."""
    blur_sigma_mean: float = 0.4
    """Mean Gaussian blur sigma in pixels of the raw frame; values under 0.3 mean no blur."""
    blur_sigma_std: float = 0.6
    """Std of the slowly varying blur sigma (bursts of motion/focus blur)."""
    pixel_noise_range: tuple[float, float] = (2.0, 9.0)
    """Per-video sensor noise std (uint8 grey levels), drawn uniformly."""
    mouth_occlusion_frac: float = 0.10
    """Share of frames whose mouth is hidden (hand, microphone)."""
    eye_occlusion_frac: float = 0.04
    """Share of frames whose eyes are hidden (hair, glasses glare)."""
    occlusion_mean_sec: float = 0.8
    """Mean length of an occlusion episode, seconds."""
    absent_frac: float = 0.05
    """Share of frames in which the person is out of view (no face, no crop)."""
    absent_mean_sec: float = 0.8
    """Mean length of an out-of-view episode, seconds."""
    crop_dropout_prob: float = 0.02
    """Probability that the face detector misses a visible face in a frame (no crop)."""
    max_detect_yaw: float = 0.9
    """Faces turned further than this (radians) are not detected (no crop), as with real detectors."""
    align_jitter: float = 0.03
    """Std of the aligner's error (shift as a share of the crop; log-scale and roll likewise)."""


@dataclass(frozen=True)
class AnnotationConfig:
    """Which frames and videos carry labels."""

    unannotated_frac: float = 0.05
    """Share of frames without a label, per task (episodes, drawn independently per task)."""
    unannotated_mean_sec: float = 1.2
    """Mean length of an unannotated stretch, seconds."""
    task_coverage: tuple[float, float, float] = (1.0, 0.9, 0.8)
    """Probability that a person is annotated for VA, EXPR, AU (every split keeps one of each)."""
    va_decimals: int = 3
    """Decimals written in the VA files."""


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines a synthetic dataset: the same config writes the same files."""

    seed: int = 0
    """Master seed; raw video ``i`` draws from ``numpy.random.default_rng([seed, 0, i])`` alone."""
    n_videos: int = 20
    """Raw videos (a two-person video yields two annotated videos, ``_left``/``_right``)."""
    n_frames: int = 300
    """Frames per raw video."""
    frame_count_jitter: float = 0.0
    """Relative spread of video lengths (0 = all exactly ``n_frames``)."""
    fps: int = 25
    """Frame rate of the raw videos and unit of all ``*_sec`` knobs."""
    frame_width: int = 320
    """Raw video width in pixels (even)."""
    frame_height: int = 256
    """Raw video height in pixels (even)."""
    crop_size: int = 112
    """Side of the aligned face crops in ``cropped_aligned`` (Aff-Wild2 uses 112)."""
    val_fraction: float = 0.25
    """Share of raw videos in ``Validation_Set`` (at least one when there are two or more videos)."""
    two_person_fraction: float = 0.15
    """Share of raw videos showing two people side by side (at least one when there are two or more)."""
    write_videos: bool = True
    """Write ``videos/<video>.mp4`` (Aff-Wild2 users often hold only crops and annotations)."""
    write_crops: bool = True
    """Write ``cropped_aligned`` face crops. With both this and ``write_videos`` off nothing is rendered:
    annotations and ground truth only, for fast label-level experiments (not a complete ABAW tree)."""
    video_crf: int = 23
    """libx264 constant rate factor of the raw videos (lower = better quality, bigger files)."""
    video_preset: str = "ultrafast"
    """libx264 preset; ``ultrafast`` is ~3x cheaper than ``veryfast`` on these noisy frames, files ~2x bigger."""
    jpeg_quality: int = 90
    """JPEG quality of the face crops."""
    layout: str = "abaw6"
    """``abaw6`` (the ABAW 6 tree), ``video_csv`` (``<split>/<video>.mp4`` + ``<video>.csv``, no crops: the
    layout of users' own recordings; needs ``two_person_fraction=0``, one person per CSV) or ``clip_folders``
    (``<split>/<class>/<clip>.mp4``, one expression per clip; ``n_videos`` clips of ``n_frames``)."""
    clip_classes: tuple[str, ...] = DEFAULT_CLIP_CLASSES
    """Layout ``clip_folders``: the classes clips show, in turn (canonical names of ``EXPR_CLASSES_8``)."""
    affect: AffectConfig = field(default_factory=AffectConfig)
    nuisance: NuisanceConfig = field(default_factory=NuisanceConfig)
    annotation: AnnotationConfig = field(default_factory=AnnotationConfig)

    def __post_init__(self) -> None:
        _check(self)


def _check(cfg: SynthConfig) -> None:
    n_classes = len(EXPR_CLASSES_8)
    a, nz, an = cfg.affect, cfg.nuisance, cfg.annotation
    problems: list[str] = []
    if cfg.n_videos < 1 or cfg.n_frames < 2:
        problems.append("n_videos must be >= 1 and n_frames >= 2")
    if cfg.frame_width % 2 or cfg.frame_height % 2 or min(cfg.frame_width, cfg.frame_height) < 64:
        problems.append("frame_width and frame_height must be even and >= 64 (H.264 yuv420p)")
    if cfg.fps < 1 or cfg.crop_size < 16:
        problems.append("fps must be >= 1 and crop_size >= 16")
    if not 0.0 <= cfg.frame_count_jitter < 1.0:
        problems.append("frame_count_jitter must be in [0, 1)")
    for name in ("val_fraction", "two_person_fraction"):
        if not 0.0 <= getattr(cfg, name) < 1.0:
            problems.append(f"{name} must be in [0, 1)")
    if cfg.layout not in LAYOUTS:
        problems.append(f"layout must be one of {', '.join(LAYOUTS)}")
    elif cfg.layout == "video_csv" and (cfg.two_person_fraction > 0 or not cfg.write_videos):
        problems.append("layout video_csv needs two_person_fraction=0 (one person per CSV) and write_videos=true")
    elif cfg.layout == "clip_folders" and not cfg.write_videos:
        problems.append("layout clip_folders needs write_videos=true (the clips are the videos)")
    if len(set(cfg.clip_classes)) < 2 or any(c not in EXPR_CLASSES_8 for c in cfg.clip_classes):
        problems.append(f"clip_classes needs two or more distinct names of {', '.join(EXPR_CLASSES_8)}")
    if len(a.class_shares) != n_classes or min(a.class_shares) <= 0:
        problems.append(f"affect.class_shares needs {n_classes} positive values")
    if len(a.mean_dwell_sec) != n_classes or min(a.mean_dwell_sec) <= 0:
        problems.append(f"affect.mean_dwell_sec needs {n_classes} positive values")
    if len(a.va_centroids) != n_classes or any(len(c) != 2 or max(map(abs, c)) > 1 for c in a.va_centroids):
        problems.append(f"affect.va_centroids needs {n_classes} (valence, arousal) pairs in [-1, 1]")
    lo, hi = a.intensity_range
    if not 0 < lo <= hi:
        problems.append("affect.intensity_range must satisfy 0 < low <= high")
    fracs = {
        "nuisance.mouth_occlusion_frac": nz.mouth_occlusion_frac,
        "nuisance.eye_occlusion_frac": nz.eye_occlusion_frac,
        "nuisance.absent_frac": nz.absent_frac,
        "nuisance.crop_dropout_prob": nz.crop_dropout_prob,
        "annotation.unannotated_frac": an.unannotated_frac,
    }
    problems += [f"{k} must be in [0, 1)" for k, v in fracs.items() if not 0.0 <= v < 1.0]
    if any(not 0.0 <= p <= 1.0 for p in an.task_coverage):
        problems.append("annotation.task_coverage values must be in [0, 1]")
    if nz.pixel_noise_range[0] > nz.pixel_noise_range[1] or nz.pixel_noise_range[0] < 0:
        problems.append("nuisance.pixel_noise_range must be (low, high) with 0 <= low <= high")
    if problems:
        raise ConfigError("SynthConfig: " + "; ".join(problems))
