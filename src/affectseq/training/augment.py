"""Frame augmentations, applied to a whole preprocessed batch at once.

The defaults are the paper's: rotation +-15 deg, shift 0.1, zoom 0.9-1.25,
horizontal flip, brightness 0.5-1.5. Each image draws its own parameters, but
the warp of the whole batch is one ``affine_grid``/``grid_sample`` call: on a
shared 2-core CPU, per-image ``torchvision.transforms.v2`` pipelines cost as
much as the network's forward pass at 64 px, this costs a few milliseconds.

It runs on the output of :func:`affectseq.features.preprocess_faces` (after
resizing/normalisation, which stay in that one function); brightness is applied
in pixel space by undoing and redoing the normalisation with the spec's mean/std.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from affectseq.features.encoders import EncoderSpec


@dataclass(frozen=True)
class AugmentConfig:
    """Frame augmentation settings (the paper's values by default); ``enabled=False`` turns all off."""

    enabled: bool = True
    rotation_deg: float = 15.0
    shift: float = 0.1  # fraction of the image size, each axis
    zoom: tuple[float, float] = (0.9, 1.25)  # > 1 zooms in
    hflip: bool = True
    brightness: tuple[float, float] = (0.5, 1.5)  # pixel-value factor


class BatchAugment:
    """Random per-image flip/rotation/shift/zoom/brightness of a normalised (N, C, S, S) batch."""

    def __init__(self, config: AugmentConfig, spec: EncoderSpec) -> None:
        self.config = config
        self.mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
        self.std = torch.tensor(spec.std).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None,
                 rows: tuple[int, int] | None = None) -> torch.Tensor:
        """Augment ``x``; ``rows=(start, total)`` says it is rows ``start:start+len(x)`` of a batch of ``total``.

        The random parameters are drawn for the whole batch of ``total`` and this
        part's rows kept, so a DDP rank augments its share of a global batch exactly
        as one process augments the whole batch, and the generator advances alike.
        """
        c = self.config
        n = x.shape[0]
        start, total = rows if rows is not None else (0, n)
        mine = slice(start, start + n)

        def draw() -> torch.Tensor:
            return torch.rand(total, generator=generator)[mine]

        def uniform(low: float, high: float) -> torch.Tensor:
            return low + (high - low) * draw()

        angle = uniform(-c.rotation_deg, c.rotation_deg) * (math.pi / 180)
        zoom = uniform(*c.zoom)
        # affine_grid maps output coords to input coords in [-1, 1]: a shift of f * size is 2f there.
        tx, ty = uniform(-2 * c.shift, 2 * c.shift), uniform(-2 * c.shift, 2 * c.shift)
        flip = torch.where(draw() < 0.5, -1.0, 1.0) if c.hflip else torch.ones(n)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        # Zero padding in normalised space is the dataset mean colour, not black.
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if c.brightness != (1.0, 1.0):
            factor = uniform(*c.brightness).view(n, 1, 1, 1).to(x.dtype)
            mean, std = self.mean.to(x.dtype), self.std.to(x.dtype)
            pixels = (out * std + mean) * factor  # pixel values in [0, 1] scaled
            out = (pixels.clamp(0.0, 1.0) - mean) / std
        return out


def build_augment(config: AugmentConfig, spec: EncoderSpec) -> BatchAugment | None:
    """The batch augmentation for ``spec``'s inputs, or ``None`` when disabled."""
    return BatchAugment(config, spec) if config.enabled else None
