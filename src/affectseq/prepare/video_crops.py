"""Face crops of one raw video for each annotated person on it (one :class:`~affectseq.data.crop_export.CropJob`).

Faces come from :class:`affectseq.faces.stream.FaceCropStream`, i.e. predict's detector,
tracker, planner and alignment. Which face is the person follows
:mod:`affectseq.data.crop_export` (``main``, ``left``/``right``, ``face_id``); a frame
without the person's face gets no crop, exactly like a missing crop in Aff-Wild2.
Crops go to ``<work>/<video_id>/<frame_idx + 1:05d>.jpg`` (ABAW's 1-based numbers).
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from affectseq.data.crop_export import CropJob, CropPerson
from affectseq.faces.stream import DEFAULT_DETECT_EVERY, FaceCrop, FaceCropStream, FrameFaces, make_tracker

OWNER_FILE = ".affectseq-crops.json"  # in each crop folder: marks it as ours (crop readers list *.jpg only)
_TRACKS = ".tracks"


@dataclass(frozen=True)
class CropOptions:
    """How faces are found (predict's options of the same names) and crops stored."""

    detector: str = "mtcnn"
    detect_every: int = DEFAULT_DETECT_EVERY
    jpeg_quality: int = 95

    def fingerprint(self) -> dict[str, object]:
        """What a finished video's marker records; a rerun with other options redoes the video."""
        return {"detector": self.detector, "detect_every": self.detect_every, "jpeg_quality": self.jpeg_quality}


def crop_name(frame_idx: int) -> str:
    """ABAW's crop file name of a 0-based ``frame_idx``: ``00001.jpg`` is frame 0."""
    return f"{frame_idx + 1:05d}.jpg"


def write_crop(path: Path, crop: np.ndarray, quality: int) -> None:
    """Write an RGB crop as JPEG."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(crop[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG crop")
    path.write_bytes(encoded.tobytes())


def crop_job(job: CropJob, work: Path, options: CropOptions) -> dict[str, int]:
    """Write every person's crops of ``job`` under ``work/<video_id>/``; ``{video_id: crops written}``.

    Persons following the main face share one stream with the tracker's ``main_face_only``;
    the others share one stream with every face.
    """
    for person in job.persons:
        (work / person.video_id).mkdir(parents=True)
    counts = {p.video_id: 0 for p in job.persons}
    main = [p for p in job.persons if p.rule == "main"]
    others = [p for p in job.persons if p.rule != "main"]
    if main:
        for frame in _frames(job.video, options, main_face_only=True):
            for face in frame.faces[:1]:
                for person in main:
                    write_crop(work / person.video_id / crop_name(face.frame_idx), face.crop, options.jpeg_quality)
                    counts[person.video_id] += 1
    if others:
        _crop_selected(job, others, work, options, counts)
    return counts


def _frames(video: Path, options: CropOptions, main_face_only: bool) -> Iterator[FrameFaces]:
    tracker = make_tracker(options.detector, options.detect_every, main_face_only)
    return FaceCropStream(video, tracker).frames()


def _crop_selected(job: CropJob, persons: list[CropPerson], work: Path, options: CropOptions,
                   counts: dict[str, int]) -> None:
    """``face_id`` persons are chosen per frame; ``left``/``right`` need whole tracks, so every face is kept
    under ``work/.tracks/<face_id>/`` until the video is done, then the person's faces are moved."""
    sided = [p for p in persons if p.rule in ("left", "right")]
    seen: list[tuple[int, int, float, float]] = []  # frame_idx, face_id, box area, box centre x
    tracks = work / _TRACKS
    for frame in _frames(job.video, options, main_face_only=False):
        for face in frame.faces:
            for person in persons:
                if person.rule == "face_id" and _named(person, face):
                    write_crop(work / person.video_id / crop_name(face.frame_idx), face.crop, options.jpeg_quality)
                    counts[person.video_id] += 1
            if sided:
                folder = tracks / str(face.face_id)
                folder.mkdir(parents=True, exist_ok=True)
                write_crop(folder / crop_name(face.frame_idx), face.crop, options.jpeg_quality)
                x1, y1, x2, y2 = face.box
                seen.append((face.frame_idx, face.face_id, (x2 - x1) * (y2 - y1), (x1 + x2) / 2))
    if sided:
        _assign_sides(job.video, sided, seen, work, counts)
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


def _assign_sides(video: Path, persons: list[CropPerson], seen: list[tuple[int, int, float, float]],
                  work: Path, counts: dict[str, int]) -> None:
    from affectseq.io.video import probe_video

    chosen = side_faces(seen, probe_video(video).width)
    for person in persons:
        for frame_idx, fid in sorted(chosen[person.rule].items()):
            os.replace(work / _TRACKS / str(fid) / crop_name(frame_idx), work / person.video_id / crop_name(frame_idx))
            counts[person.video_id] += 1
