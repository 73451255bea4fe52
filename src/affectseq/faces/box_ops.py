"""NMS and RoIAlign for the MTCNN detector, in plain torch/NumPy (no torchvision).

Why not ``torchvision.ops``: importing it costs seconds per process (``torchvision``'s
``__init__`` imports every model, and ``torchvision.ops.roi_align`` imports
``torch._dynamo``), and ``affectseq predict`` on a short clip paid that on every run
only for these two small ops. Both functions here reproduce torchvision's CPU
kernels: the same definitions, tie order and edge rules, and for ``roi_align`` the
same float operations in the same order, so on CPU the results are bit-identical
(the detector's boxes, and so predict's outputs, do not change).
``tests/test_faces_box_ops.py`` compares them with torchvision's on random and
edge-case inputs and on the detector's outputs for real clips.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["nms", "roi_align"]
# Up to this many boxes NMS computes the full IoU matrix (n**2 floats); beyond, row by row.
_NMS_MATRIX_MAX = 512


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression, as ``torchvision.ops.nms``.

    Boxes ``(N, 4)`` as ``(x1, y1, x2, y2)``, visited by descending score (a stable
    sort, so among equal scores the lower index comes first); a box is dropped when
    its IoU with an already kept box is ``> iou_threshold``. IoU uses areas without
    the "+1" pixel convention, computed in the boxes' dtype like torchvision's kernel
    (a zero-area box against an identical one gives NaN, which suppresses nothing).

    Returns the kept indices (int64, on ``boxes.device``) in descending score order.
    """
    n = int(boxes.shape[0])
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    # NumPy, not torch: these are tens to a few thousand boxes, where the per-call
    # cost of torch ops would exceed the arithmetic.
    b = boxes.detach().cpu().numpy()
    s = scores.detach().cpu().numpy()
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
    keep = torch.from_numpy(order[np.asarray(kept, dtype=np.int64)].astype(np.int64))
    return keep.to(boxes.device)


def roi_align(
    input: torch.Tensor,
    rois: torch.Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = 2,
    aligned: bool = True,
) -> torch.Tensor:
    """RoIAlign with average pooling, as ``torchvision.ops.roi_align`` (Mask R-CNN).

    Args:
        input: ``(N, C, H, W)`` float feature maps.
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

    Returns ``(K, C, out_h, out_w)`` in ``input``'s dtype.
    """
    if sampling_ratio <= 0:
        raise ValueError("roi_align: sampling_ratio must be > 0")
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    n_images, channels, height, width = input.shape
    k = int(rois.shape[0])
    if k == 0:
        return input.new_zeros((0, channels, out_h, out_w))
    rois = rois.to(device=input.device, dtype=input.dtype)
    offset = 0.5 if aligned else 0.0
    start_x = rois[:, 1] * spatial_scale - offset
    start_y = rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - start_x
    roi_h = rois[:, 4] * spatial_scale - offset - start_y
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    taps_y = _bilinear_taps(start_y, roi_h, out_h, sampling_ratio, height)   # 4 x (K, Sy)
    taps_x = _bilinear_taps(start_x, roi_w, out_w, sampling_ratio, width)    # 4 x (K, Sx)
    return _pooled_bins(input, rois[:, 0].long(), taps_y, taps_x, (out_h, out_w), sampling_ratio)


def _pooled_bins(input: torch.Tensor, batch_idx: torch.Tensor, taps_y: tuple[torch.Tensor, ...],
                 taps_x: tuple[torch.Tensor, ...], out_hw: tuple[int, int], sampling_ratio: int) -> torch.Tensor:
    """:func:`roi_align`'s bins from the bilinear taps of each RoI (``batch_idx``: its image), ``(K, C, oh, ow)``."""
    _, channels, height, width = input.shape
    k = int(batch_idx.shape[0])
    out_h, out_w = out_hw
    ylo, yhi, ly, hy = taps_y
    xlo, xhi, lx, hx = taps_x
    hy, ly = hy[:, :, None], ly[:, :, None]
    hx, lx = hx[:, None, :], lx[:, None, :]
    # Pixel values at the four taps, (C, K, Sy, Sx) each, from the maps as (C, N*H*W) planes.
    planes = _planes(input)
    base = batch_idx[:, None] * (height * width)
    rows_lo, rows_hi = base + ylo * width, base + yhi * width

    def tap(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        idx = (rows[:, :, None] + cols[:, None, :]).reshape(-1)
        return _take_columns(planes, idx).reshape(channels, k, rows.shape[1], cols.shape[1])

    # w1*v1 + w2*v2 + w3*v3 + w4*v4 with w1 = hy*hx etc. (zero weights for samples
    # outside the image), left to right, one rounding per operation: the kernel's
    # float arithmetic exactly, so the detector's results are bit-identical to it.
    val = tap(rows_lo, xlo).mul_(hy * hx)
    val += tap(rows_lo, xhi).mul_(hy * lx)
    val += tap(rows_hi, xlo).mul_(ly * hx)
    val += tap(rows_hi, xhi).mul_(ly * lx)
    # Each bin: its samples summed in row-major order, then divided by their count
    # (samples outside the image count, as zeros).
    val = val.reshape(channels, k, out_h, sampling_ratio, out_w, sampling_ratio)
    acc = None
    for iy in range(sampling_ratio):
        for ix in range(sampling_ratio):
            part = val[:, :, :, iy, :, ix]
            acc = part.clone() if acc is None else acc.add_(part)
    acc /= float(sampling_ratio * sampling_ratio)
    return acc.transpose(0, 1)


def _planes(input: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` maps as contiguous ``(C, N*H*W)`` (one copy; NumPy's is the quick one on CPU)."""
    n, c, h, w = input.shape
    view = input.transpose(0, 1).reshape(c, n * h * w)
    if input.device.type != "cpu":
        return view.contiguous()
    return torch.from_numpy(np.ascontiguousarray(view.numpy()))


def _take_columns(src: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``src[:, idx]``; on CPU through NumPy, several times faster than index_select here."""
    if src.device.type != "cpu":
        return src.index_select(1, idx)
    return torch.from_numpy(np.take(src.numpy(), idx.numpy(), axis=1))


def _bilinear_taps(start: torch.Tensor, size: torch.Tensor, bins: int, ratio: int, extent: int):
    """Per RoI, the sample positions along one axis as the kernel turns them into taps.

    Position ``start + bin * bin_size + (i + 0.5) * bin_size / ratio`` (the kernel's
    order of float operations); outside ``[-1, extent]`` the sample is zero: both
    weights 0. Otherwise clamped at 0, and from ``extent - 1`` on it reads the last
    pixel only. Returns ``(lo, hi, w_hi, w_lo)``, each ``(K, bins * ratio)``.
    """
    bin_size = (size / bins)[:, None]
    b = torch.arange(bins, dtype=start.dtype, device=start.device).repeat_interleave(ratio)
    s = (torch.arange(ratio, dtype=start.dtype, device=start.device) + 0.5).repeat(bins)
    pos = start[:, None] + b[None] * bin_size + s[None] * bin_size / ratio
    valid = (pos >= -1.0) & (pos <= extent)
    pos = pos.clamp(min=0.0)
    lo = pos.long()                                   # truncation, as the kernel's (int) cast
    last = lo >= extent - 1
    lo = torch.where(last, extent - 1, lo)
    hi = torch.where(last, lo, lo + 1)
    pos = torch.where(last, lo.to(pos.dtype), pos)
    w_hi = pos - lo.to(pos.dtype)
    w_lo = 1.0 - w_hi
    zero = torch.zeros((), dtype=pos.dtype, device=pos.device)
    w_hi, w_lo = torch.where(valid, w_hi, zero), torch.where(valid, w_lo, zero)
    lo, hi = lo.masked_fill(~valid, 0), hi.masked_fill(~valid, 0)
    return lo, hi, w_hi, w_lo
