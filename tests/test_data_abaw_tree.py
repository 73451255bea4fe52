"""Hand-made mini Aff-Wild2 trees (every ABAW layout and edge case) used by the ABAW and inspect tests.

Each tree is written from the literal rows below, so the expected counts in the
tests are worked out by hand from these lines, not by the code under test.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

EXPR8 = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
EXPR7 = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise"
AU12 = "AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26"
AU8 = "AU1,AU2,AU4,AU6,AU12,AU15,AU20,AU25"


def _rows(values) -> list[str]:
    return [str(v) for v in values]


# ABAW 6 tree: task -> split -> video_id -> file lines (header first).
ABAW6_ANNOTATIONS: dict[str, dict[str, dict[str, list[str]]]] = {
    "EXPR_Recognition_Challenge": {
        "Train_Set": {
            "vidA": [EXPR8] + _rows([0, 0, 4, 4, 4, -1, 7, 2, 1, 3]),
            "vidB_left": [EXPR8] + _rows([5, 5, 6, -1, 0, 0]),
            "vidB_right": [EXPR8] + _rows([4, 4, 4, 4, 4, 4]),
            "vidBad": ["Neutral,Anger", "0", "1"],  # wrong header: file skipped
            "vidRows": [EXPR8, "0", "1,2", "x", "9", "3"],  # lines 3, 4, 5 malformed; no crop folder
            "vidEmpty": [],  # empty file: skipped
        },
        "Validation_Set": {
            "vidC": [EXPR8] + _rows([0, 1, 2, 3, 4, 5, 6, 7]),
            "vidLong": [EXPR8] + _rows([0] * 8),  # its raw video has only 5 frames
        },
    },
    "VA_Estimation_Challenge": {
        "Train_Set": {
            "vidA": ["valence,arousal", "0.5,0.5", "-0.5,0.5", "-0.5,-0.5", "0.5,-0.5", "-5,-5",
                     "1.5,0.2", "-5,0.3", "0.25,0.75", "0,0", "1,-1"],  # line 7 out of range, line 8 half-annotated
            "vidB_left": ["valence,arousal"] + ["0.1,0.2"] * 6,
        },
        "Validation_Set": {
            "vidC": ["valence,arousal"] + ["-0.2,0.4"] * 8,
        },
    },
    "AU_Detection_Challenge": {
        "Train_Set": {
            "vidA": [AU12] + [",".join(["1"] + ["0"] * 11)] * 8
            + [",".join(["-1"] * 12), ",".join(["2"] + ["1"] * 11)],  # last row: AU1 = 2 is invalid
        },
        "Validation_Set": {
            "vidC": [AU8] + [",".join(["0", "1"] * 4)] * 8,  # ABAW 2020 AU set: 5 AUs unannotated
        },
    },
}
# video_id -> 1-based crop numbers (None: no crop folder at all).
ABAW6_CROPS: dict[str, list[int] | None] = {
    "vidA": [1, 2, 3, 5, 6, 8, 9, 10],  # rows 4 and 7 have no face
    "vidB_left": [1, 2, 3, 4, 5, 6],
    "vidB_right": [1, 2, 3],
    "vidC": list(range(1, 9)),
    "vidLong": list(range(1, 9)),
}
# raw video stem -> (folder, frames); vidB.mp4 is shared by vidB_left and vidB_right, vidC has none.
ABAW6_VIDEOS: dict[str, tuple[str, int]] = {"vidA": ("batch1", 10), "vidB": ("batch2", 6), "vidLong": ("raw_videos", 5)}

ABAW2020_ANNOTATIONS = {
    "EXPR_Set": {
        "Training_Set": {"v1": [EXPR7] + _rows([0, 1, 1, 6, -1, 7])},  # 7 is out of range in 7 classes (line 7)
        "Validation_Set": {"v2": [EXPR7] + _rows([4, 4, 0])},
    },
    "VA_Set": {"Training_Set": {"v1": ["valence,arousal"] + ["0.3,-0.3"] * 6}},
    "AU_Set": {"Training_Set": {"v1": [AU8] + [",".join(["1"] * 8)] * 6}},
}
ABAW2020_CROPS = {"v1": [1, 2, 3, 4, 5, 6], "v2": [1, 3]}

ABAW3_ANNOTATIONS = {
    "EXPR_Classification_Challenge": {
        "Train_Set": {"p1": [EXPR8] + _rows([7, 7, 0]), "p2_left": [EXPR8] + _rows([1, 2])},
        "Validation_Set": {"p3": [EXPR8] + _rows([3])},
    },
    "VA_Estimation_Challenge": {"Train_Set": {"p1": ["valence,arousal", "0.9,0.9", "-0.9,-0.9", "-5,-5"]}},
}
ABAW3_CROPS = {"p1": [1, 2, 3], "p2_left": [2], "p3": [1]}


def _write_jpg(path: Path, level: int) -> None:
    Image.fromarray(np.full((16, 16, 3), level % 256, np.uint8)).save(path, quality=90)


def write_tiny_video(path: Path, n_frames: int, size: int = 32) -> None:
    """An mpeg4 mp4 of ``n_frames`` gray frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 20 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_tree(root: Path, annotations_root: Path, annotations: dict, crops: dict,
               videos: dict | None = None, crlf: tuple[str, ...] = ()) -> Path:
    """Write annotation files, ``cropped_aligned`` jpgs and raw videos; return ``root``."""
    for task_folder, splits in annotations.items():
        for split, files in splits.items():
            folder = annotations_root / task_folder / split
            folder.mkdir(parents=True, exist_ok=True)
            for video_id, lines in files.items():
                newline = "\r\n" if video_id in crlf else "\n"
                text = newline.join(lines) + (newline * 2 if lines else "")  # trailing blank line too
                (folder / f"{video_id}.txt").write_bytes(text.encode())
    for video_id, numbers in crops.items():
        if numbers is None:
            continue
        folder = root / "cropped_aligned" / video_id
        folder.mkdir(parents=True, exist_ok=True)
        for i in numbers:
            _write_jpg(folder / f"{i:05d}.jpg", 10 * i)
    for stem, (folder, n_frames) in (videos or {}).items():
        write_tiny_video(root / folder / f"{stem}.mp4", n_frames)
    return root


def build_abaw6(root: Path) -> Path:
    """ABAW 6 tree: annotations under a parent folder, crops with gaps, raw videos in batch1/, batch2/, raw_videos/."""
    write_tree(root, root / "6th_ABAW_Annotations", ABAW6_ANNOTATIONS, ABAW6_CROPS, ABAW6_VIDEOS, crlf=("vidC",))
    # A macOS resource-fork file beside the annotations: not an annotation, never indexed.
    (root / "6th_ABAW_Annotations" / "EXPR_Recognition_Challenge" / "Train_Set" / "._vidA.txt").write_bytes(b"\0\5")
    return root


def build_abaw2020(root: Path) -> Path:
    """ABAW 2020 tree: ``annotations/{EXPR,VA,AU}_Set/{Training,Validation}_Set``, no raw videos."""
    return write_tree(root, root / "annotations", ABAW2020_ANNOTATIONS, ABAW2020_CROPS)


def build_abaw3(root: Path) -> Path:
    """ABAW 3 tree: task folders directly in the root, no AU task, no raw videos."""
    return write_tree(root, root, ABAW3_ANNOTATIONS, ABAW3_CROPS)
