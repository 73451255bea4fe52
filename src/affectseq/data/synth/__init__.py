"""Synthetic Aff-Wild2-like benchmark: rendered faces driven by a known latent affect state.

A tool for testing and controlled experiments, not a substitute for real data (see
``docs/synthetic.md``). Use :func:`generate` with a :class:`SynthConfig`::

    from affectseq.config import load_config
    from affectseq.data.synth import SynthConfig, generate

    cfg = load_config(SynthConfig, overrides=["n_videos=4", "n_frames=100", "seed=1"])
    summary = generate("synth_out", cfg)
"""

from affectseq.data.synth.config import AffectConfig, AnnotationConfig, NuisanceConfig, SynthConfig
from affectseq.data.synth.generate import SynthSummary, generate, plan_videos

__all__ = [
    "AffectConfig",
    "AnnotationConfig",
    "NuisanceConfig",
    "SynthConfig",
    "SynthSummary",
    "generate",
    "plan_videos",
]
