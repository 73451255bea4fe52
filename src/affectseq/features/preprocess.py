"""``preprocess_faces``: the only place face crops are cropped, resized and normalised.

Training, feature extraction and ``predict`` all call :func:`preprocess_faces`
with the encoder's :class:`~affectseq.features.encoders.EncoderSpec`, so the
three can never disagree on input size, channels or normalisation.

Framing: a model trained on FER2013 (tight, centred faces) sees video faces
aligned in the ABAW ``cropped_aligned``-like framing of ``affectseq.faces``.
When the caller says which framing its faces have (``framing=``) and the model
was trained on another one, the matching sub-box of :data:`FRAMING_CROPS` is
cut out first so that the face fills the input as it did in training.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from affectseq.features.encoders import EncoderSpec

# (from framing, to framing) -> (x0, y0, x1, y1) as fractions of the source crop: the box of a
# source-framed crop that shows what a target-framed crop shows. abaw112 -> fer2013 was measured on FER+
# *validation* faces (never test: it is a design choice) by `benchmarks/framing_calibration.py`: 400 faces
# (4x upscaled) pasted on a grey canvas, detected + aligned with affectseq.faces (MTCNN, 112 template), each
# FER image's corners mapped into the aligned crop; median box (0.083, 0.146, 0.916, 0.994), interquartile
# spread ~0.12. Chosen over session 1's box (0.045, 0.10, 0.945, 1.0, measured on FER2013 test faces) by
# `benchmarks/fer_through_video.py` on 240 FER+ validation faces with the v2 default: through-video accuracy
# 0.812 with either, agreement with direct classification 0.910 vs 0.888.
FRAMING_CROPS: dict[tuple[str, str], tuple[float, float, float, float]] = {
    ("abaw112", "fer2013"): (0.083, 0.146, 0.916, 0.994),
}

# ITU-R BT.601 luma weights, the conversion PIL and OpenCV use for RGB -> gray.
_LUMA = torch.tensor([0.299, 0.587, 0.114])


def framing_box(source: str | None, target: str) -> tuple[float, float, float, float] | None:
    """The fractional crop box converting ``source`` framing to ``target``, or None if none applies."""
    if source is None or source == target or target == "as_given" or source == "as_given":
        return None
    return FRAMING_CROPS.get((source, target))


def _to_uint8_batch(faces: np.ndarray | torch.Tensor | Sequence[np.ndarray]) -> torch.Tensor:
    if isinstance(faces, torch.Tensor):
        batch = faces
    elif isinstance(faces, np.ndarray):
        batch = torch.from_numpy(np.ascontiguousarray(faces))
    else:
        raise TypeError("faces must be one (N, H, W, 3) array; preprocess differently sized faces one by one")
    if batch.ndim == 3:
        batch = batch.unsqueeze(0)
    if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"faces must be uint8 (N, H, W, 3) RGB, got {tuple(batch.shape)} {batch.dtype}")
    return batch


def preprocess_faces(
    spec: EncoderSpec,
    faces: np.ndarray | torch.Tensor,
    framing: str | None = None,
) -> torch.Tensor:
    """Turn uint8 RGB face crops (N, H, W, 3) into the encoder's float input (N, C, S, S).

    Steps, all deterministic: crop to the model's framing when ``framing`` (of the
    given faces) differs from ``spec.framing`` and a conversion is known; convert to
    luma when ``spec.grayscale``; resize to ``spec.input_size`` (bilinear, antialiased
    when shrinking); scale to [0, 1]; repeat gray to ``spec.in_chans``; normalise
    with ``spec.mean``/``spec.std``. A single (H, W, 3) face is treated as N=1.
    """
    return preprocess_batch(spec, _to_uint8_batch(faces), framing, _interpolate)


def _interpolate(x: torch.Tensor, out_hw: tuple[int, int], antialias: bool) -> torch.Tensor:
    """The resize of :func:`preprocess_faces`: bilinear, antialiased when shrinking."""
    return F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False, antialias=antialias)


def preprocess_batch(spec: EncoderSpec, batch: torch.Tensor, framing: str | None,
                     resize: Callable[[torch.Tensor, tuple[int, int], bool], torch.Tensor]) -> torch.Tensor:
    """:func:`preprocess_faces` on a uint8 (N, H, W, 3) tensor with a given ``resize(x, (h, w), antialias)``.

    The ONNX export of a frame model traces this with :func:`resize_matrices`' matrix
    products as ``resize`` (the exporter has no antialiased resize), so the exported
    graph takes the aligned crops themselves and preprocesses them exactly as here.
    """
    x = batch.permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, H, W) in [0, 1]
    box = framing_box(framing, spec.framing)
    if box is not None:
        height, width = int(x.shape[-2]), int(x.shape[-1])
        x0, y0, x1, y1 = box
        x = x[..., round(y0 * height):round(y1 * height), round(x0 * width):round(x1 * width)]
    if spec.grayscale:
        x = torch.einsum("nchw,c->nhw", x, _LUMA.to(x.dtype)).unsqueeze(1)
    size = spec.input_size
    height, width = int(x.shape[-2]), int(x.shape[-1])
    if (height, width) != (size, size):
        x = resize(x, (size, size), width > size or height > size)
    if x.shape[1] != spec.in_chans:
        x = x[:, :1].expand(-1, spec.in_chans, -1, -1) if x.shape[1] == 1 else x[:, :1].mean(1, keepdim=True)
    mean = torch.tensor(spec.mean, dtype=x.dtype).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype).view(1, -1, 1, 1)
    return ((x - mean) / std).contiguous()


def resize_matrices(spec: EncoderSpec, crop_hw: tuple[int, int], framing: str | None
                    ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(rows (S, h), cols (S, w))``: :func:`preprocess_faces`' resize of ``crop_hw`` crops as matrices.

    The resize is separable and linear, so ``rows @ x @ cols.T`` is it; each matrix is the
    resize itself applied to one-hot rows (the other axis 1 -> 1, weight 1).
    ``None`` when the crops need no resize.
    """
    box = framing_box(framing, spec.framing)
    height, width = crop_hw
    if box is not None:
        x0, y0, x1, y1 = box
        height = round(y1 * crop_hw[0]) - round(y0 * crop_hw[0])
        width = round(x1 * crop_hw[1]) - round(x0 * crop_hw[1])
    size = spec.input_size
    if (height, width) == (size, size):
        return None
    antialias = width > size or height > size

    def along(n: int) -> torch.Tensor:
        # One-hot rows resized along the width (resizing (n, 1, n, 1) columns along the height
        # gives other weights in torch's antialiased kernel: measured, 0.65 off).
        eye = torch.eye(n).reshape(n, 1, 1, n)
        return _interpolate(eye, (1, size), antialias)[:, 0, 0, :].T.contiguous()   # (S, n)

    return along(height), along(width)
