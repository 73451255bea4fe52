"""Face crops of one raw video for each annotated person on it (one :class:`~affectseq.data.crop_export.CropJob`).

Faces come from :class:`affectseq.faces.stream.FaceCropStream`, i.e. predict's detector,
tracker, planner and alignment. Which face is the person follows
:mod:`affectseq.data.crop_export` (``main``, ``left``/``right``, ``face_id``); a frame
without the person's face gets no crop, exactly like a missing crop in Aff-Wild2.
Crops go to ``<work>/<video_id>/<frame_idx + 1:05d>.jpg`` (ABAW's 1-based numbers).
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

import numpy as np

from affectseq.data.abaw_layout import CROPS_MANIFEST
from affectseq.data.crop_export import CropJob, CropPerson
from affectseq.faces.detector import DEFAULT_DETECTOR
from affectseq.faces.settings import DEFAULT_DETECT_EVERY, FACE_PARAMS
from affectseq.faces.stream import FaceCrop, FaceCropStream, FrameFaces, make_tracker
from affectseq.utils.params import Interval, Param, params_fingerprint, validate_params

OWNER_FILE = CROPS_MANIFEST  # in each crop folder: marks it as ours, records its raw video and fps
_TRACKS = ".tracks"


@dataclass(frozen=True)
class CropOptions:
    """How faces are found (the face settings of the same names, :mod:`affectseq.faces.settings`) and crops
    stored. Which face is the person is decided per person (:mod:`affectseq.data.crop_export`), so
    ``main_face_only`` is not one of them."""

    PARAMS: ClassVar[dict[str, Param]] = {
        "detector": FACE_PARAMS["detector"],
        "detect_every": FACE_PARAMS["detect_every"],
        "jpeg_quality": Param(95, Interval(int, 1, 100), "JPEG quality of the stored crops"),
    }

    detector: str = DEFAULT_DETECTOR
    detect_every: int = DEFAULT_DETECT_EVERY
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        validate_params(self)

    def fingerprint(self) -> dict[str, object]:
        """What a finished video's marker records; a rerun with other options redoes the video."""
        return params_fingerprint(self)


def crop_name(frame_idx: int) -> str:
    """ABAW's crop file name of a 0-based ``frame_idx``: ``00001.jpg`` is frame 0."""
    return f"{frame_idx + 1:05d}.jpg"


def encode_crop(crop: np.ndarray, quality: int) -> bytes:
    """An RGB crop as JPEG bytes: what ``data faces`` stores and what direct extraction decodes."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(crop[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG crop")
    return encoded.tobytes()


def decode_crop(data: bytes) -> np.ndarray:
    """JPEG bytes back to (H, W, 3) uint8 RGB with the decoder that reads crop files
    (:func:`affectseq.data.frames.read_image_rgb`: OpenCV), so both give the same pixels."""
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise RuntimeError("OpenCV failed to decode a JPEG crop")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def crop_job(job: CropJob, work: Path, options: CropOptions) -> dict[str, int]:
    """Write every person's crops of ``job`` under ``work/<video_id>/``; ``{video_id: crops written}``."""
    for person in job.persons:
        (work / person.video_id).mkdir(parents=True)
    counts = {p.video_id: 0 for p in job.persons}
    for video_id, frame_idx, jpeg in person_crops(job, options, work):
        (work / video_id / crop_name(frame_idx)).write_bytes(jpeg)
        counts[video_id] += 1
    return counts


def person_crops(job: CropJob, options: CropOptions, scratch: Path) -> Iterator[tuple[str, int, bytes]]:
    """``(video_id, frame_idx, JPEG bytes)`` of each annotated person's face crop on each frame of ``job``.

    The one place that decides which face is the person, shared by ``data faces`` (which
    writes the bytes as crop files) and direct extraction (which decodes them): both see the
    same pixels. Persons following the main face share one stream with the tracker's
    ``main_face_only``; the others share one stream with every face. ``left``/``right``
    persons need whole tracks: their crops come after the video, kept until then under
    ``scratch/.tracks/`` (removed at the end).
    """
    main = [p for p in job.persons if p.rule == "main"]
    others = [p for p in job.persons if p.rule != "main"]
    if main:
        first_idx: int | None = None
        for frame in _frames(job, options, main_face_only=True):
            # A job covering part of a video (a clip_list row's time range) numbers its frames from its start.
            first_idx = frame.frame_idx if first_idx is None else first_idx
            for face in frame.faces[:1]:
                jpeg = encode_crop(face.crop, options.jpeg_quality)
                for person in main:
                    yield person.video_id, face.frame_idx - first_idx, jpeg
    if others:
        yield from _selected_crops(job, others, scratch, options)


def _frames(job: CropJob, options: CropOptions, main_face_only: bool) -> Iterator[FrameFaces]:
    from affectseq.io.video import VideoReader

    tracker = make_tracker(options.detector, options.detect_every, main_face_only)
    ranged = job.start_sec is not None or job.end_sec is not None
    reader = VideoReader(job.video, start_sec=job.start_sec, end_sec=job.end_sec) if ranged else None
    return FaceCropStream(job.video, tracker).frames(reader)


def _selected_crops(job: CropJob, persons: list[CropPerson], scratch: Path,
                    options: CropOptions) -> Iterator[tuple[str, int, bytes]]:
    """``face_id`` persons are chosen per frame; ``left``/``right`` ones once every track is known."""
    sided = [p for p in persons if p.rule in ("left", "right")]
    seen: list[tuple[int, int, float, float]] = []  # frame_idx, face_id, box area, box centre x
    tracks = scratch / _TRACKS
    for frame in _frames(job, options, main_face_only=False):
        for face in frame.faces:
            jpeg = encode_crop(face.crop, options.jpeg_quality)
            for person in persons:
                if person.rule == "face_id" and _named(person, face):
                    yield person.video_id, face.frame_idx, jpeg
            if sided:
                folder = tracks / str(face.face_id)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / crop_name(face.frame_idx)).write_bytes(jpeg)
                x1, y1, x2, y2 = face.box
                seen.append((face.frame_idx, face.face_id, (x2 - x1) * (y2 - y1), (x1 + x2) / 2))
    if sided:
        from affectseq.io.video import probe_video

        chosen = side_faces(seen, probe_video(job.video).width)
        for person in sided:
            for frame_idx, fid in sorted(chosen[person.rule].items()):
                yield person.video_id, frame_idx, (tracks / str(fid) / crop_name(frame_idx)).read_bytes()
        shutil.rmtree(tracks, ignore_errors=True)


def _named(person: CropPerson, face: FaceCrop) -> bool:
    ids = person.face_ids
    return ids is not None and face.frame_idx < len(ids) and int(ids[face.frame_idx]) == face.face_id


def side_faces(seen: list[tuple[int, int, float, float]], width: int) -> dict[str, dict[int, int]]:
    """``{"left"|"right": {frame_idx: face_id}}``: a track's side is where its mean centre lies
    (left half or right half of the frame); per frame and side, the largest face of that side wins."""
    if not seen:
        return {"left": {}, "right": {}}
    rows = np.array(seen, dtype=np.float64)
    centre: dict[int, list[float]] = defaultdict(list)
    for fid, cx in zip(rows[:, 1].astype(int), rows[:, 3]):
        centre[fid].append(cx)
    side_of = {fid: "left" if np.mean(xs) < width / 2 else "right" for fid, xs in centre.items()}
    best: dict[str, dict[int, tuple[float, int]]] = {"left": {}, "right": {}}
    for frame_idx, fid, area, _ in seen:
        chosen = best[side_of[fid]]
        if frame_idx not in chosen or area > chosen[frame_idx][0]:
            chosen[frame_idx] = (area, fid)
    return {side: {f: fid for f, (_, fid) in chosen.items()} for side, chosen in best.items()}
