"""MTCNN face detector (Zhang et al. 2016) on CPU: ONNX Runtime by default, PyTorch as the fallback.

Three cascaded networks (:mod:`affectseq.faces.mtcnn_nets`): P-Net scans an image
pyramid for candidate windows, R-Net rejects most of them on 24x24 crops, O-Net
scores the rest on 48x48 crops and gives the final box and five landmarks.

Everything around the networks (pyramid, box regression, NMS, RoIAlign crops) is NumPy,
shared by both backends; only the three forward passes differ:

- ``backend="onnx"`` (the default on CPU): the ONNX files shipped in ``affectseq/weights``
  (:mod:`affectseq.faces.mtcnn_onnx`), so the detector imports no torch;
- ``backend="torch"``: the PyTorch networks built from the ``mtcnn`` package's weights
  (also on a GPU, ``device="cuda"``). Both give the same detections to float rounding.

Speed on CPU comes from limiting the work, not from approximating the networks:

- frames larger than ``max_side`` are downscaled once before detection (faces
  smaller than ``min_face_px`` are not wanted anyway);
- the pyramid starts at the scale where a ``min_face_px`` face becomes P-Net's
  12-pixel window, so no level searches for faces we would discard; its scales are
  computed once per frame size;
- :meth:`MTCNNDetector.detect_batch` runs R-Net and O-Net once over the candidates of
  all its frames;
- :meth:`MTCNNDetector.refine` runs only O-Net on given boxes: the tracker uses it
  to verify and re-fit faces between full detections (a fraction of a millisecond).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import cv2
import numpy as np

from affectseq.errors import ConfigError
from affectseq.faces.box_ops import nms, roi_align
from affectseq.faces.detector import Detection, check_rgb

_PNET_STRIDE = 2
_PNET_CELL = 12
BACKENDS: tuple[str, ...] = ("auto", "onnx", "torch")


def _normalize(img_u8: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in about [-1, 1], MTCNN's input scaling.

    A channels-last view (no transposed copy): the torch networks run channels_last.
    """
    x = (img_u8.astype(np.float32) - np.float32(127.5)) * np.float32(1.0 / 128.0)
    return x.transpose(2, 0, 1)[None]


def _to_batch(crops_u8: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 crops -> normalised (N, 3, S, S) float32, a channels-last view."""
    x = (crops_u8.astype(np.float32) - np.float32(127.5)) * np.float32(1.0 / 128.0)
    return x.transpose(0, 3, 1, 2)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes (N, 4) grown to squares around their centres (R-/O-Net expect square crops)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    cx = boxes[:, 0] + w / 2
    cy = boxes[:, 1] + h / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def _square_np(boxes: np.ndarray) -> np.ndarray:
    """Float64 squares for the tracking path (refine's boxes come in frame pixels as float64)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    half = np.maximum(w, h) / 2
    cx = boxes[:, 0] + w / 2
    cy = boxes[:, 1] + h / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


def _apply_reg(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """MTCNN box regression: offsets are fractions of the box width/height."""
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    return boxes + reg * np.concatenate([w, h, w, h], axis=1)


def resolve_backend(backend: str, device: str = "cpu") -> str:
    """``"onnx"`` or ``"torch"`` for a requested ``backend``; ``auto``: ONNX Runtime on CPU when installed."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown MTCNN backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    import importlib.util

    return "onnx" if str(device) == "cpu" and importlib.util.find_spec("onnxruntime") is not None else "torch"


def load_nets(backend: str, device: str = "cpu") -> Any:
    """The three networks behind one interface: ``pnet(x) -> (reg, prob)``, ``rnet(x) -> (reg, prob)``,
    ``onet(x) -> (reg, landmarks, prob)``, NumPy float32 in and out."""
    if backend == "onnx":
        from affectseq.faces.mtcnn_onnx import OnnxMTCNNNets

        return OnnxMTCNNNets()
    from affectseq.faces.mtcnn_nets import TorchMTCNNNets

    return TorchMTCNNNets(device)


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
        device: where the torch networks run ("cpu" or "cuda").
        backend: ``"auto"`` (ONNX Runtime on CPU when installed, else torch), ``"onnx"`` or ``"torch"``.
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
        backend: str = "auto",
    ) -> None:
        self.min_face_px = float(min_face_px)
        self.min_face_frac = float(min_face_frac)
        self.max_side = int(max_side)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        self.nms_thresholds = tuple(float(t) for t in nms_thresholds)
        self.device = str(device)
        self.backend = resolve_backend(backend, self.device)
        self.nets = load_nets(self.backend, self.device)
        self._scales: dict[tuple[int, int, float], list[float]] = {}

    # ---------------------------------------------------------------- public API
    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in one upright RGB frame, highest score first."""
        return self.detect_batch([rgb])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """``detect`` for each frame; R-Net and O-Net run once over all frames' candidates.

        P-Net scans each frame's own pyramid. The results are each frame's ``detect``
        (to float rounding of a larger batch).
        """
        works, scales, boxes = [], [], []
        for rgb in frames:
            rgb = check_rgb(rgb)
            work, scale = self._work_image(rgb)
            min_face = max(self.min_face_px, self.min_face_frac * min(rgb.shape[:2])) * scale
            works.append(work)
            scales.append(scale)
            boxes.append(self._stage_pnet(work, max(min_face, 12.0)))
        boxes = self._stage_rnet(works, boxes)
        dets = self._run_onet(works, boxes, self.thresholds[2])
        out = []
        for frame_dets, scale in zip(dets, scales):
            kept = self._nms_detections([d for d in frame_dets if d is not None], self.nms_thresholds[3])
            out.append([_rescale(d, 1.0 / scale) for d in kept])
        return out

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
        return self._run_onet([rgb], [sq], thr)[0]

    # ---------------------------------------------------------------- stages
    def _work_image(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        longest = max(rgb.shape[:2])
        if longest <= self.max_side:
            return rgb, 1.0
        scale = self.max_side / longest
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale

    def _pyramid(self, height: int, width: int, min_face: float) -> list[float]:
        """P-Net's scales for a frame size, computed once per size (a video keeps its size)."""
        key = (height, width, min_face)
        if key not in self._scales:
            scales = []
            scale = _PNET_CELL / min_face
            while min(height, width) * scale >= _PNET_CELL:
                scales.append(scale)
                scale *= self.scale_factor
            self._scales[key] = scales
        return self._scales[key]

    def _stage_pnet(self, work: np.ndarray, min_face: float) -> np.ndarray:
        """Square candidate boxes (K, 4) float32 of one working image."""
        height, width = work.shape[:2]
        all_boxes, all_scores = [], []
        level = work
        for scale in self._pyramid(height, width, min_face):
            size = (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale)))
            # Each level is shrunk from the previous one: area resampling of a smaller
            # source is several times cheaper than from the full frame, and as smooth.
            level = cv2.resize(level, size, interpolation=cv2.INTER_AREA)
            reg, prob = self.nets.pnet(_normalize(level))
            ys, xs = np.nonzero(prob[0] > self.thresholds[0])
            if len(ys) == 0:
                continue
            # Window (x, y) of the score map covers [2x, 2x+12) pixels of this level.
            win = np.stack([xs, ys, xs, ys], axis=1).astype(np.float32) * np.float32(_PNET_STRIDE)
            win[:, 2:] += np.float32(_PNET_CELL)
            win = win / np.float32(scale)
            scores = prob[0, ys, xs]
            boxes = _apply_reg(win, reg[0, :, ys, xs])
            keep = nms(win, scores, self.nms_thresholds[0])
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
        if not all_boxes:
            return np.zeros((0, 4), np.float32)
        boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
        keep = nms(boxes, scores, self.nms_thresholds[1])
        return _square(boxes[keep])

    def _stage_rnet(self, works: list[np.ndarray], boxes: list[np.ndarray]) -> list[np.ndarray]:
        """R-Net on every frame's candidates in one batch; the kept square boxes per frame."""
        # Bilinear crops (RoIAlign), like the tf.image.crop_and_resize of the package
        # these weights come from; measured: area-resized crops here let more false
        # faces through to O-Net.
        crops = [roi_align(_normalize(work), np.concatenate([np.zeros((len(b), 1), np.float32), b], axis=1),
                           output_size=24, spatial_scale=1.0, sampling_ratio=2, aligned=True)
                 for work, b in zip(works, boxes) if len(b)]
        if not crops:
            return boxes
        reg_all, prob_all = self.nets.rnet(np.concatenate(crops) if len(crops) > 1 else crops[0])
        out, start = [], 0
        for b in boxes:
            reg, prob = reg_all[start:start + len(b)], prob_all[start:start + len(b)]
            start += len(b)
            keep = prob > self.thresholds[1]
            kept = _apply_reg(b[keep], reg[keep])
            out.append(_square(kept[nms(kept, prob[keep], self.nms_thresholds[2])]))
        return out

    def _run_onet(self, images: list[np.ndarray], boxes: list[np.ndarray],
                  threshold: float) -> list[list[Detection | None]]:
        """O-Net on square ``boxes`` of each image in one batch; per image, one Detection (or None) per box."""
        crops = [crop_resized(image, b, 48) for image, frame_boxes in zip(images, boxes) for b in frame_boxes]
        if not crops:
            return [[] for _ in images]
        reg_all, marks_all, prob_all = self.nets.onet(_to_batch(np.stack(crops)))
        out, start = [], 0
        for frame_boxes in boxes:
            n = len(frame_boxes)
            out.append(_onet_detections(np.asarray(frame_boxes, dtype=np.float64), reg_all[start:start + n],
                                        marks_all[start:start + n], prob_all[start:start + n], threshold))
            start += n
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


def _onet_detections(boxes: np.ndarray, reg: np.ndarray, marks: np.ndarray, prob: np.ndarray,
                     threshold: float) -> list[Detection | None]:
    """O-Net's outputs for square ``boxes`` (float64) -> one Detection, or None below ``threshold``, per box."""
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
