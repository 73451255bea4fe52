"""Annotated MP4 (H.264 via PyAV/libx264): each face's box and label, probability bars or a VA gauge.

The video is decoded a second time (upright frames, as ``predict`` saw them)
and each frame is drawn from the frames table, so the overlay always shows
exactly what ``frames.csv`` says. The original audio is dropped by default;
``keep_audio=True`` copies the audio packets unchanged (no re-encoding).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from affectseq.predict.table import prob_column
from affectseq.predict.timeline import CLASS_COLORS
from affectseq.utils.atomic import atomic_path

log = logging.getLogger(__name__)

# Audio codecs the MP4 muxer accepts as-is (packets are copied, never re-encoded).
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})


def _bgr_free_color(name: str | None) -> tuple[int, int, int]:
    """An RGB tuple for a class name (frames are RGB here, so no BGR swap)."""
    hexcode = CLASS_COLORS.get(str(name), "#ffffff").lstrip("#")
    return tuple(int(hexcode[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def draw_faces(
    rgb: np.ndarray, rows: pd.DataFrame, classes: Sequence[str], has_va: bool
) -> np.ndarray:
    """Draw the face rows of one frame onto a copy of ``rgb`` and return it."""
    import cv2

    img = np.ascontiguousarray(rgb.copy())
    height, width = img.shape[:2]
    scale = max(min(width, height) / 540.0, 0.7)
    thick = max(int(round(2 * scale)), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    faces = rows[rows["face_id"].notna()]
    if faces.empty:
        return img
    # The largest face gets the detailed panel (bars or VA gauge); others get box + label.
    areas = (faces["x2"] - faces["x1"]) * (faces["y2"] - faces["y1"])
    main_pos = int(np.argmax(areas.to_numpy()))
    for pos, (_, row) in enumerate(faces.iterrows()):
        label = row["label"] if isinstance(row["label"], str) else None
        color = _bgr_free_color(label)
        x1, y1, x2, y2 = (int(round(row[c])) for c in ("x1", "y1", "x2", "y2"))
        cv2.rectangle(img, (x1, y1), (x2, y2), color, thick)
        text = f"{int(row['face_id'])}:"
        if label:
            text += f" {label} {100 * float(row[prob_column(label)]):.0f}%"
        (tw, th), base = cv2.getTextSize(text, font, 0.6 * scale, thick)
        ty = y1 - 4 if y1 - th - 8 > 0 else min(y2 + th + 6, height - 2)
        cv2.rectangle(img, (x1, ty - th - 4), (x1 + tw + 4, ty + base - 2), color, -1)
        cv2.putText(img, text, (x1 + 2, ty - 2), font, 0.6 * scale, (0, 0, 0), thick, cv2.LINE_AA)
        # Panels go to the top corners away from the main face, so they never hide it.
        face_left = (x1 + x2) / 2 < width / 2
        if pos == main_pos and label:  # a face without a prediction gets its box only
            _draw_bars(img, row, classes, scale, right=face_left)
        if pos == main_pos and has_va and not np.isnan(row.get("valence", np.nan)):
            _draw_va_gauge(img, float(row["valence"]), float(row["arousal"]), scale, right=not face_left)
    return img


def _draw_bars(img: np.ndarray, row: pd.Series, classes: Sequence[str], scale: float, right: bool) -> None:
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    bar_h = max(int(20 * scale), 10)
    label_w = int(120 * scale)
    bar_w = int(140 * scale)
    panel_w = label_w + bar_w + 8
    x0 = max(img.shape[1] - panel_w - int(8 * scale), 0) if right else int(8 * scale)
    y0 = int(8 * scale)
    panel = img[y0:y0 + bar_h * len(classes) + 8, x0:x0 + panel_w]
    panel[:] = (panel * 0.45).astype(np.uint8)  # darken for legibility on any background
    for i, name in enumerate(classes):
        p = float(row[prob_column(name)])
        y = y0 + 4 + i * bar_h
        cv2.putText(img, name, (x0 + 4, y + bar_h - 4), font, 0.55 * scale, (255, 255, 255), 1, cv2.LINE_AA)
        bx = x0 + label_w
        cv2.rectangle(img, (bx, y + 2), (bx + int(bar_w * p), y + bar_h - 2), _bgr_free_color(name), -1)


def _draw_va_gauge(img: np.ndarray, valence: float, arousal: float, scale: float, right: bool) -> None:
    import cv2

    radius = int(50 * scale)
    margin = radius + int(10 * scale)
    cx, cy = (img.shape[1] - margin if right else margin), margin
    cv2.circle(img, (cx, cy), radius, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.line(img, (cx - radius, cy), (cx + radius, cy), (200, 200, 200), 1)
    cv2.line(img, (cx, cy - radius), (cx, cy + radius), (200, 200, 200), 1)
    px, py = int(cx + valence * radius), int(cy - arousal * radius)
    cv2.circle(img, (px, py), max(int(5 * scale), 3), (255, 80, 80), -1, cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, "V", (cx + radius - 10, cy - 4), font, 0.4 * scale, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(img, "A", (cx + 4, cy - radius + 12), font, 0.4 * scale, (255, 255, 255), 1, cv2.LINE_AA)


def write_overlay(
    video_path: str | Path,
    table: pd.DataFrame,
    classes: Sequence[str],
    out_path: str | Path,
    *,
    has_va: bool = False,
    keep_audio: bool = False,
    stride: int = 1,
    crf: int = 23,
) -> Path:
    """Write the annotated MP4 for ``video_path`` to ``out_path`` (atomically)."""
    import av

    from affectseq.io.video import VideoReader

    rows_by_frame = {int(k): g for k, g in table.groupby("frame_idx", sort=False)}
    reader = VideoReader(video_path, stride=stride)
    fps = reader.info.fps / stride if reader.info.fps else 25.0
    out = Path(out_path)
    with atomic_path(out) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        # yuv420p needs even sizes: the frame is cropped by at most one pixel (padded to 2 px when smaller).
        width, height = max(reader.info.width // 2 * 2, 2), max(reader.info.height // 2 * 2, 2)
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(100_000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        # Streams must all exist before the first packet is muxed (the MP4 header is written then).
        audio = _AudioCopy(Path(video_path), container) if keep_audio and reader.info.has_audio else None
        try:
            for frame in reader:
                rows = rows_by_frame.get(frame.frame_idx)
                img = frame.rgb if rows is None else draw_faces(frame.rgb, rows, classes, has_va)
                vf = av.VideoFrame.from_ndarray(_even_size(img, height, width), format="rgb24")
                for packet in stream.encode(vf):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
            if audio is not None:
                audio.copy_packets()
        finally:
            if audio is not None:
                audio.close()
    return out


def _even_size(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``img`` cropped to ``height`` x ``width``, edge-padded where smaller (a 1x1 video made an empty frame)."""
    img = img[:height, :width]
    if img.shape[0] < height or img.shape[1] < width:
        img = np.pad(img, ((0, height - img.shape[0]), (0, width - img.shape[1]), (0, 0)), mode="edge")
    return np.ascontiguousarray(img)


class _AudioCopy:
    """The source's first audio stream, copied packet by packet (MP4-compatible codecs only)."""

    def __init__(self, source: Path, container: Any):
        import av

        self.source = source
        self.src = av.open(str(source))
        self.in_stream = self.src.streams.audio[0]
        self.out_stream = None
        codec = self.in_stream.codec_context.codec
        # The codec's canonical name ("mp3"), not the decoder's ("mp3float").
        name = getattr(codec, "canonical_name", None) or self.in_stream.codec_context.name
        if name in MP4_AUDIO_CODECS:
            self.out_stream = container.add_stream_from_template(self.in_stream)
        else:
            log.warning("%s: audio codec %s cannot go into MP4 unchanged; the overlay has no audio",
                        source, name)
        self.container = container

    def copy_packets(self) -> None:
        if self.out_stream is None:
            return
        for packet in self.src.demux(self.in_stream):
            if packet.dts is None:
                continue  # the demuxer's final flush packet
            packet.stream = self.out_stream
            self.container.mux(packet)

    def close(self) -> None:
        self.src.close()
