"""NMS and RoIAlign for the MTCNN detector, in NumPy (no torch, no torchvision).

Why not ``torchvision.ops``: importing torch costs seconds per process, and the detector's
default backend (ONNX Runtime) needs no torch at all; ``affectseq predict`` on a short clip
paid that on every run only for these two small ops. Both functions here reproduce torchvision's CPU
kernels: the same definitions, tie order and edge rules, and for ``roi_align`` the
same float operations in the same order, so on CPU the results are bit-identical
(the detector's boxes, and so predict's outputs, do not change).
``tests/test_faces_box_ops.py`` compares them with torchvision's on random and
edge-case inputs and on the detector's outputs for real clips.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nms", "roi_align"]
# Up to this many boxes NMS computes the full IoU matrix (n**2 floats); beyond, row by row.
_NMS_MATRIX_MAX = 512


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression, as ``torchvision.ops.nms``.

    Boxes ``(N, 4)`` as ``(x1, y1, x2, y2)``, visited by descending score (a stable
    sort, so among equal scores the lower index comes first); a box is dropped when
    its IoU with an already kept box is ``> iou_threshold``. IoU uses areas without
    the "+1" pixel convention, computed in the boxes' dtype like torchvision's kernel
    (a zero-area box against an identical one gives NaN, which suppresses nothing).

    Returns the kept indices (int64) in descending score order.
    """
    n = int(boxes.shape[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    b, s = np.asarray(boxes), np.asarray(scores)
    order = np.argsort(-s, kind="stable")   # descending; ties keep index order
    x1, y1, x2, y2 = (np.ascontiguousarray(b[order, j]) for j in range(4))
    areas = (x2 - x1) * (y2 - y1)
    thr = float(iou_threshold)

    def suppressed_by(i: int | np.ndarray, js: np.ndarray) -> np.ndarray:
        """Whether box(es) ``i`` (positions in ``order``) suppress the boxes at ``js`` (broadcast)."""
        w = np.maximum(np.minimum(x2[i], x2[js]) - np.maximum(x1[i], x1[js]), 0)
        h = np.maximum(np.minimum(y2[i], y2[js]) - np.maximum(y1[i], y1[js]), 0)
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (areas[i] + areas[js] - inter)
        # The kernel compares float IoU with a double threshold; NaN suppresses nothing.
        return iou.astype(np.float64) > thr

    kept = []
    if n <= _NMS_MATRIX_MAX:
        # All pairs at once (the common case), then a greedy pass over rows.
        idx = np.arange(n)
        over = suppressed_by(idx[:, None], idx[None, :])
        removed = np.zeros(n, dtype=bool)
        for i in range(n):
            if not removed[i]:
                kept.append(i)
                removed |= over[i]
    else:
        remaining = np.arange(n)      # positions in `order` not yet suppressed
        while remaining.size:
            i = remaining[0]
            kept.append(i)
            rest = remaining[1:]
            remaining = rest[~suppressed_by(i, rest)]
    return order[np.asarray(kept, dtype=np.int64)].astype(np.int64)


def roi_align(
    input: np.ndarray,
    rois: np.ndarray,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = 2,
    aligned: bool = True,
) -> np.ndarray:
    """RoIAlign with average pooling, as ``torchvision.ops.roi_align`` (Mask R-CNN).

    Args:
        input: ``(N, C, H, W)`` float feature maps (any strides).
        rois: ``(K, 5)`` rows ``(batch_index, x1, y1, x2, y2)``.
        output_size: bins per side, or ``(height, width)``.
        spatial_scale: factor from box coordinates to ``input`` pixels.
        sampling_ratio: bilinear samples per bin side (must be > 0 here; torchvision's
            adaptive ``<= 0`` mode is not needed by the detector).
        aligned: shift boxes by -0.5 pixel (pixel centres at integer + 0.5).

    Each output bin is the mean of ``sampling_ratio**2`` bilinear samples at the
    centres of a regular grid over the bin. Edge rules are torchvision's: a sample
    with ``y < -1``, ``y > H``, ``x < -1`` or ``x > W`` counts as 0; otherwise its
    coordinates are clamped to ``[0, H-1]`` / ``[0, W-1]``. Without ``aligned``, box
    sides are at least one pixel (torchvision's legacy rule).

    Returns ``(K, C, out_h, out_w)`` in ``input``'s dtype, C-contiguous.
    """
    if sampling_ratio <= 0:
        raise ValueError("roi_align: sampling_ratio must be > 0")
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    _, channels, height, width = input.shape
    k = int(rois.shape[0])
    if k == 0:
        return np.zeros((0, channels, out_h, out_w), dtype=input.dtype)
    dtype = input.dtype.type
    rois = np.asarray(rois).astype(input.dtype, copy=False)
    scale, offset = dtype(spatial_scale), dtype(0.5 if aligned else 0.0)
    start_x = rois[:, 1] * scale - offset
    start_y = rois[:, 2] * scale - offset
    roi_w = rois[:, 3] * scale - offset - start_x
    roi_h = rois[:, 4] * scale - offset - start_y
    if not aligned:
        roi_w, roi_h = np.maximum(roi_w, dtype(1.0)), np.maximum(roi_h, dtype(1.0))
    taps_y = _bilinear_taps(start_y, roi_h, out_h, sampling_ratio, height)   # 4 x (K, Sy)
    taps_x = _bilinear_taps(start_x, roi_w, out_w, sampling_ratio, width)    # 4 x (K, Sx)
    return _pooled_bins(input, rois[:, 0].astype(np.int64), taps_y, taps_x, (out_h, out_w), sampling_ratio)


def _pooled_bins(input: np.ndarray, batch_idx: np.ndarray, taps_y: tuple[np.ndarray, ...],
                 taps_x: tuple[np.ndarray, ...], out_hw: tuple[int, int], sampling_ratio: int) -> np.ndarray:
    """:func:`roi_align`'s bins from the bilinear taps of each RoI (``batch_idx``: its image), ``(K, C, oh, ow)``."""
    n_images, channels, height, width = input.shape
    k = int(batch_idx.shape[0])
    out_h, out_w = out_hw
    ylo, yhi, ly, hy = taps_y
    xlo, xhi, lx, hx = taps_x
    hy, ly = hy[:, :, None], ly[:, :, None]
    hx, lx = hx[:, None, :], lx[:, None, :]
    # Pixel values at the four taps, (C, K, Sy, Sx) each, from the maps as (C, N*H*W) planes.
    planes = np.ascontiguousarray(input.transpose(1, 0, 2, 3)).reshape(channels, n_images * height * width)
    base = batch_idx[:, None] * (height * width)
    rows_lo, rows_hi = base + ylo * width, base + yhi * width

    def tap(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        idx = (rows[:, :, None] + cols[:, None, :]).reshape(-1)
        return np.take(planes, idx, axis=1).reshape(channels, k, rows.shape[1], cols.shape[1])

    # w1*v1 + w2*v2 + w3*v3 + w4*v4 with w1 = hy*hx etc. (zero weights for samples
    # outside the image), left to right, one rounding per operation: the kernel's
    # float arithmetic exactly, so the detector's results are bit-identical to it.
    val = tap(rows_lo, xlo) * (hy * hx)
    val += tap(rows_lo, xhi) * (hy * lx)
    val += tap(rows_hi, xlo) * (ly * hx)
    val += tap(rows_hi, xhi) * (ly * lx)
    # Each bin: its samples summed in row-major order, then divided by their count
    # (samples outside the image count, as zeros).
    val = val.reshape(channels, k, out_h, sampling_ratio, out_w, sampling_ratio)
    acc = None
    for iy in range(sampling_ratio):
        for ix in range(sampling_ratio):
            part = val[:, :, :, iy, :, ix]
            acc = part.copy() if acc is None else np.add(acc, part, out=acc)
    acc /= input.dtype.type(sampling_ratio * sampling_ratio)
    return np.ascontiguousarray(acc.transpose(1, 0, 2, 3))


def _bilinear_taps(start: np.ndarray, size: np.ndarray, bins: int, ratio: int, extent: int):
    """Per RoI, the sample positions along one axis as the kernel turns them into taps.

    Position ``start + bin * bin_size + (i + 0.5) * bin_size / ratio`` (the kernel's
    order of float operations); outside ``[-1, extent]`` the sample is zero: both
    weights 0. Otherwise clamped at 0, and from ``extent - 1`` on it reads the last
    pixel only. Returns ``(lo, hi, w_hi, w_lo)``, each ``(K, bins * ratio)``.
    """
    dtype = start.dtype.type
    bin_size = (size / dtype(bins))[:, None]
    b = np.repeat(np.arange(bins, dtype=start.dtype), ratio)
    s = np.tile(np.arange(ratio, dtype=start.dtype) + dtype(0.5), bins)
    pos = start[:, None] + b[None] * bin_size + s[None] * bin_size / dtype(ratio)
    valid = (pos >= -1.0) & (pos <= extent)
    pos = np.maximum(pos, dtype(0.0))
    lo = pos.astype(np.int64)                        # truncation, as the kernel's (int) cast
    last = lo >= extent - 1
    lo = np.where(last, extent - 1, lo)
    hi = np.where(last, lo, lo + 1)
    pos = np.where(last, lo.astype(pos.dtype), pos)
    w_hi = pos - lo.astype(pos.dtype)
    w_lo = dtype(1.0) - w_hi
    zero = dtype(0.0)
    w_hi, w_lo = np.where(valid, w_hi, zero), np.where(valid, w_lo, zero)
    lo, hi = np.where(valid, lo, 0), np.where(valid, hi, 0)
    return lo, hi, w_hi, w_lo
