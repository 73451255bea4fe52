"""MTCNN face detector (Zhang et al. 2016) in PyTorch, tuned for speed on CPU.

Three cascaded networks (:mod:`affectseq.faces.mtcnn_nets`): P-Net scans an image
pyramid for candidate windows, R-Net rejects most of them on 24x24 crops, O-Net
scores the rest on 48x48 crops and gives the final box and five landmarks.

Speed on CPU comes from limiting the work, not from approximating the networks:

- frames larger than ``max_side`` are downscaled once before detection (faces
  smaller than ``min_face_px`` are not wanted anyway);
- the pyramid starts at the scale where a ``min_face_px`` face becomes P-Net's
  12-pixel window, so no level searches for faces we would discard;
- :meth:`MTCNNDetector.refine` runs only O-Net on given boxes: the tracker uses it
  to verify and re-fit faces between full detections (a fraction of a millisecond).
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np
import torch

# box_ops, not torchvision.ops: importing torchvision costs seconds per predict run.
from affectseq.faces.box_ops import nms, roi_align
from affectseq.faces.detector import Detection, check_rgb
from affectseq.faces.mtcnn_nets import load_mtcnn_nets

_PNET_STRIDE = 2
_PNET_CELL = 12


def _normalize(img_u8: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in about [-1, 1], MTCNN's input scaling."""
    t = torch.from_numpy(img_u8).permute(2, 0, 1).unsqueeze(0).float()
    return t.sub_(127.5).mul_(1.0 / 128.0)


def _to_batch(crops_u8: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 crops -> normalised (N, 3, S, S) float, channels_last like the nets."""
    return torch.from_numpy(crops_u8).permute(0, 3, 1, 2).float().sub_(127.5).mul_(1.0 / 128.0)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes (N, 4) grown to squares around their centres (R-/O-Net expect square crops)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    cx = boxes[:, 0] + w / 2
    cy = boxes[:, 1] + h / 2
    return torch.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], dim=1)


def _square_np(boxes: np.ndarray) -> np.ndarray:
    """:func:`_square` in NumPy (the per-frame tracking path: tiny arrays, no torch overhead)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    half = np.maximum(w, h) / 2
    cx = boxes[:, 0] + w / 2
    cy = boxes[:, 1] + h / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


def _apply_reg(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """MTCNN box regression: offsets are fractions of the box width/height."""
    w = (boxes[:, 2] - boxes[:, 0]).unsqueeze(1)
    h = (boxes[:, 3] - boxes[:, 1]).unsqueeze(1)
    return boxes + reg * torch.cat([w, h, w, h], dim=1)


def crop_resized(img_u8: np.ndarray, box: Sequence[float], size: int) -> np.ndarray:
    """The ``box`` region of ``img_u8`` resized to ``size``x``size``; outside the image is black.

    Uses area interpolation when shrinking (no aliasing on large faces).
    """
    h, w = img_u8.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if cx2 <= cx1 or cy2 <= cy1:
        return np.zeros((size, size, 3), np.uint8)
    patch = np.ascontiguousarray(img_u8[cy1:cy2, cx1:cx2])
    if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
        patch = cv2.copyMakeBorder(patch, cy1 - y1, y2 - cy2, cx1 - x1, x2 - cx2,
                                   cv2.BORDER_CONSTANT, value=(0, 0, 0))
    factor = min(patch.shape[0], patch.shape[1]) // size
    if factor >= 2:
        # Area averaging is the right way to shrink but slow at fractional ratios in
        # OpenCV; a bilinear step to a multiple of `size` then an integer-ratio area
        # step gives the same pixels at a fraction of the cost.
        patch = cv2.resize(patch, (size * factor, size * factor), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)


class MTCNNDetector:
    """MTCNN with the ``mtcnn`` package's weights; boxes, scores and 5 landmarks.

    Args:
        min_face_px: smallest face side searched for, in pixels of the input frame.
        min_face_frac: the same as a fraction of the frame's shorter side; the larger of
            the two limits applies (keeps the pyramid short on big frames).
        max_side: frames whose longer side exceeds this are downscaled before detection.
        thresholds: face-probability thresholds of P-Net, R-Net and O-Net.
        scale_factor: ratio between pyramid levels.
        nms_thresholds: IoU thresholds of NMS within a pyramid level, across levels,
            after R-Net and after O-Net (the last as intersection over the smaller box).
        device: torch device for the networks ("cpu" or "cuda").
    """

    name = "mtcnn"
    has_landmarks = True

    def __init__(
        self,
        min_face_px: float = 40.0,
        min_face_frac: float = 0.0,
        max_side: int = 720,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8),
        scale_factor: float = 0.709,
        nms_thresholds: tuple[float, float, float, float] = (0.5, 0.7, 0.7, 0.7),
        device: str = "cpu",
    ) -> None:
        self.min_face_px = float(min_face_px)
        self.min_face_frac = float(min_face_frac)
        self.max_side = int(max_side)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        self.nms_thresholds = tuple(float(t) for t in nms_thresholds)
        self.device = torch.device(device)
        # channels_last: PyTorch's CPU max-pooling is ~10x faster in NHWC than NCHW
        # for these small maps, and our inputs come from HWC images anyway.
        self.pnet, self.rnet, self.onet = (
            n.to(self.device, memory_format=torch.channels_last) for n in load_mtcnn_nets()
        )

    # ---------------------------------------------------------------- public API
    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in one upright RGB frame, highest score first."""
        rgb = check_rgb(rgb)
        work, scale = self._work_image(rgb)
        min_face = max(self.min_face_px, self.min_face_frac * min(rgb.shape[:2])) * scale
        with torch.inference_mode():
            boxes = self._stage_pnet(work, max(min_face, 12.0))
            if len(boxes):
                boxes = self._stage_rnet(work, boxes)
            if not len(boxes):
                return []
            dets = self._stage_onet(work, boxes.cpu().numpy(), self.thresholds[2])
        dets = [d for d in dets if d is not None]
        dets = self._nms_detections(dets, self.nms_thresholds[3])
        return [_rescale(d, 1.0 / scale) for d in dets]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """``detect`` per frame (P-Net's pyramid differs per frame size, so no cross-frame batch)."""
        return [self.detect(f) for f in frames]

    def refine(self, rgb: np.ndarray, boxes: Sequence[Sequence[float]],
               threshold: float | None = None) -> list[Detection | None]:
        """Run O-Net alone on ``boxes`` (frame pixels): a re-fitted detection or ``None`` per box.

        ``None`` means O-Net's face probability is below ``threshold`` (default: the
        O-Net detection threshold). The tracker calls this to verify and re-fit tracked faces.
        """
        # Crops come straight from the full frame (no downscaled copy, and any strided
        # view such as a rotated frame works): only the boxes' pixels are touched.
        rgb = check_rgb(rgb, contiguous=False)
        if len(boxes) == 0:
            return []
        sq = _square_np(np.asarray(boxes, np.float64).reshape(-1, 4))
        thr = self.thresholds[2] if threshold is None else float(threshold)
        with torch.inference_mode():
            return self._stage_onet(rgb, sq, thr)

    # ---------------------------------------------------------------- stages
    def _work_image(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        longest = max(rgb.shape[:2])
        if longest <= self.max_side:
            return rgb, 1.0
        scale = self.max_side / longest
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale

    def _pyramid(self, height: int, width: int, min_face: float) -> list[float]:
        scales = []
        scale = _PNET_CELL / min_face
        while min(height, width) * scale >= _PNET_CELL:
            scales.append(scale)
            scale *= self.scale_factor
        return scales

    def _stage_pnet(self, work: np.ndarray, min_face: float) -> torch.Tensor:
        height, width = work.shape[:2]
        all_boxes, all_scores = [], []
        level = work
        for scale in self._pyramid(height, width, min_face):
            size = (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale)))
            # Each level is shrunk from the previous one: area resampling of a smaller
            # source is several times cheaper than from the full frame, and as smooth.
            level = cv2.resize(level, size, interpolation=cv2.INTER_AREA)
            reg, prob = self.pnet(_normalize(level).to(self.device))
            ys, xs = torch.nonzero(prob[0] > self.thresholds[0], as_tuple=True)
            if len(ys) == 0:
                continue
            # Window (x, y) of the score map covers [2x, 2x+12) pixels of this level.
            win = torch.stack([xs, ys, xs, ys], dim=1).float() * _PNET_STRIDE
            win[:, 2:] += _PNET_CELL
            win = win / scale
            scores = prob[0, ys, xs]
            boxes = _apply_reg(win, reg[0, :, ys, xs].T)
            keep = nms(win, scores, self.nms_thresholds[0])
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
        if not all_boxes:
            return torch.zeros((0, 4))
        boxes, scores = torch.cat(all_boxes), torch.cat(all_scores)
        keep = nms(boxes, scores, self.nms_thresholds[1])
        return _square(boxes[keep])

    def _stage_rnet(self, work: np.ndarray, boxes: torch.Tensor) -> torch.Tensor:
        # Bilinear crops (roi_align), like the tf.image.crop_and_resize of the package
        # these weights come from; measured: area-resized crops here let more false
        # faces through to O-Net.
        image = _normalize(work).to(self.device)
        rois = torch.cat([torch.zeros((len(boxes), 1), device=boxes.device), boxes], dim=1).to(self.device)
        crops = roi_align(image, rois, output_size=24, spatial_scale=1.0, sampling_ratio=2, aligned=True)
        reg, prob = self.rnet(crops.contiguous(memory_format=torch.channels_last))
        keep = prob > self.thresholds[1]
        boxes = _apply_reg(boxes.to(self.device)[keep], reg[keep])
        scores = prob[keep]
        keep = nms(boxes, scores, self.nms_thresholds[2])
        return _square(boxes[keep]).cpu()

    def _stage_onet(self, work: np.ndarray, boxes: np.ndarray, threshold: float) -> list[Detection | None]:
        """O-Net on square ``boxes`` of ``work``; one Detection (or None below threshold) per box."""
        crops = _to_batch(np.stack([crop_resized(work, b, 48) for b in boxes]))
        reg, marks, prob = (t.cpu().numpy() for t in self.onet(crops.to(self.device)))
        boxes = np.asarray(boxes, dtype=np.float64)
        wh = boxes[:, 2:] - boxes[:, :2]
        final = boxes + reg * np.concatenate([wh, wh], axis=1)
        out: list[Detection | None] = []
        for i in range(len(boxes)):
            if prob[i] < threshold:
                out.append(None)
                continue
            lm = np.stack([boxes[i, 0] + wh[i, 0] * marks[i, :5],
                           boxes[i, 1] + wh[i, 1] * marks[i, 5:]], axis=1).astype(np.float32)
            out.append(Detection(tuple(float(v) for v in final[i]), float(prob[i]), lm))
        return out

    @staticmethod
    def _nms_detections(dets: list[Detection], overlap: float) -> list[Detection]:
        """MTCNN's final NMS in "Min" mode: overlap = intersection / smaller area.

        Unlike IoU, this also removes a small box nested inside a face (a mouth or an
        eye scored as a face), a false positive IoU-NMS lets through.
        """
        order = sorted(range(len(dets)), key=lambda i: -dets[i].score)
        kept: list[Detection] = []
        for i in order:
            a = dets[i]
            if all(_min_overlap(a.box, b.box) <= overlap for b in kept):
                kept.append(a)
        return kept


def _min_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / max(smaller, 1e-9)


def _rescale(det: Detection, factor: float) -> Detection:
    if factor == 1.0:
        return det
    lm = None if det.landmarks is None else (det.landmarks * factor).astype(np.float32)
    return Detection(tuple(v * factor for v in det.box), det.score, lm)
