"""Writing one synthetic video's outputs in the ABAW 6 (or video_csv) layout, atomically per video.

Everything a video produces (raw mp4, crop folders, annotation files, ground truth) is first
written under ``OUT/.synth_tmp/<video>/`` with the final relative paths, then moved into place
with ``os.replace``; the ground-truth files move last and mark the video as done, so a killed
run leaves no half-written file and a rerun redoes exactly the unfinished videos.
"""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from affectseq.labels import AU_NAMES_ABAW3, EXPR_CLASSES_8

TASK_DIRS: dict[str, str] = {
    "VA": "VA_Estimation_Challenge",
    "EXPR": "EXPR_Recognition_Challenge",
    "AU": "AU_Detection_Challenge",
}
TASKS: tuple[str, ...] = tuple(TASK_DIRS)
SPLITS: tuple[str, ...] = ("Train_Set", "Validation_Set")
VA_UNANNOTATED = -5
STAGING_DIR = ".synth_tmp"  # removed by the generator once every video is done
GROUND_TRUTH_DIR = "ground_truth"


def annotation_relpath(task: str, split: str, video_id: str) -> Path:
    """Relative path of one annotation file, e.g. ``EXPR_Recognition_Challenge/Train_Set/x.txt``."""
    return Path(TASK_DIRS[task]) / split / f"{video_id}.txt"


def ground_truth_relpath(video_id: str) -> Path:
    """Relative path of one annotated video's ground-truth archive."""
    return Path(GROUND_TRUTH_DIR) / f"{video_id}.npz"


# Split folders of the video_csv layout: the plain names users give them (every reader takes these aliases).
VIDEO_CSV_SPLITS: dict[str, str] = {"Train_Set": "train", "Validation_Set": "validation"}


def video_relpath(layout: str, split: str, name: str) -> Path:
    """Relative path of a raw video: ``videos/<name>.mp4`` (ABAW 6) or ``<split>/<name>.mp4`` (video_csv)."""
    folder = VIDEO_CSV_SPLITS[split] if layout == "video_csv" else "videos"
    return Path(folder) / f"{name}.mp4"


def format_video_csv(tasks: tuple[str, ...], labels: dict[str, np.ndarray], annotated: dict[str, np.ndarray],
                     decimals: int) -> str:
    """A video_csv label file: ``frame_idx`` plus the columns of ``tasks`` only, one row per frame.

    Columns: ``expression`` (class index), ``valence``/``arousal``, the 12 ABAW 3+ AUs; a cell of
    a frame without that task's label is empty (unannotated). ``labels`` maps "EXPR"/"VA"/"AU" to
    the per-frame arrays, ``annotated`` to their bool masks.
    """
    header = ["frame_idx"]
    header += ["expression"] if "EXPR" in tasks else []
    header += ["valence", "arousal"] if "VA" in tasks else []
    header += list(AU_NAMES_ABAW3) if "AU" in tasks else []
    rows = [",".join(header)]
    n = len(next(iter(labels.values())))
    for f in range(n):
        cells = [str(f)]
        if "EXPR" in tasks:
            cells.append(str(int(labels["EXPR"][f])) if annotated["EXPR"][f] else "")
        if "VA" in tasks:
            ok = annotated["VA"][f]
            cells += [f"{x:.{decimals}f}" if ok else "" for x in labels["VA"][f].tolist()]
        if "AU" in tasks:
            ok = annotated["AU"][f]
            cells += [str(int(x)) if ok else "" for x in labels["AU"][f].tolist()]
        rows.append(",".join(cells))
    return "\n".join(rows) + "\n"


def format_va(va: np.ndarray, annotated: np.ndarray, decimals: int) -> str:
    """VA file text: header ``valence,arousal``, one row per frame, ``-5,-5`` where unannotated."""
    rows = ["valence,arousal"]
    for (v, a), ok in zip(va.tolist(), annotated.tolist()):
        rows.append(f"{v:.{decimals}f},{a:.{decimals}f}" if ok else f"{VA_UNANNOTATED},{VA_UNANNOTATED}")
    return "\n".join(rows) + "\n"


def format_expr(expr: np.ndarray, annotated: np.ndarray) -> str:
    """EXPR file text: the 8-class ABAW 6 header, one integer per frame, ``-1`` where unannotated."""
    values = np.where(annotated, expr, -1)
    return ",".join(EXPR_CLASSES_8) + "\n" + "".join(f"{v}\n" for v in values.tolist())


def format_au(au: np.ndarray, annotated: np.ndarray) -> str:
    """AU file text: the 12 ABAW 3+ AU columns, 0/1 per frame, all ``-1`` where unannotated."""
    rows = [",".join(AU_NAMES_ABAW3)]
    unannotated = ",".join(["-1"] * len(AU_NAMES_ABAW3))
    for row, ok in zip(au.tolist(), annotated.tolist()):
        rows.append(",".join(map(str, row)) if ok else unannotated)
    return "\n".join(rows) + "\n"


class Mp4Writer:
    """Streams RGB frames into an H.264 mp4 (PyAV/libx264), one frame at a time."""

    def __init__(self, path: Path, width: int, height: int, fps: int, crf: int, preset: str):
        import av  # local: only needed when raw videos are written

        path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(path), mode="w", format="mp4")
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps, 1))
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"
        # One encoder thread: videos are already encoded in parallel, one per worker process.
        self._stream.options = {"crf": str(crf), "preset": preset, "threads": "1"}
        self._frame_cls = av.VideoFrame

    def write(self, rgb: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 RGB frame."""
        for packet in self._stream.encode(self._frame_cls.from_ndarray(rgb, format="rgb24")):
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._container.close()


class StagedVideo:
    """The staging folder of one raw video and the atomic move of its outputs into ``out_dir``.

    Staged outputs sit flat in one folder (no nested directories to create and delete: on
    slow file systems those cost more than writing the annotation files).
    """

    def __init__(self, out_dir: Path, video_name: str):
        self.out_dir = out_dir
        self.root = out_dir / STAGING_DIR / video_name
        if self.root.exists():  # left over from a killed run
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        self._targets: dict[Path, Path] = {}  # final relative path -> staged path

    def path(self, relpath: str | Path) -> Path:
        """Staging location of an output (file or folder) whose final place is ``out_dir / relpath``."""
        rel = Path(relpath)
        staged = self._targets.setdefault(rel, self.root / f"{len(self._targets):04d}_{rel.name}")
        return staged

    def commit(self, marker_files: list[Path]) -> None:
        """Move every staged output into place, ``marker_files`` (relative paths) last."""
        markers = {Path(m) for m in marker_files}
        for rel in sorted(self._targets, key=lambda r: r in markers):
            staged, target = self._targets[rel], self.out_dir / rel
            if staged.is_dir() and target.exists():
                shutil.rmtree(target)  # a crop folder of an unfinished earlier run
            try:
                os.replace(staged, target)
            except FileNotFoundError:
                if not staged.exists():
                    continue  # declared but never written (e.g. no crop folder asked for)
                target.parent.mkdir(parents=True, exist_ok=True)  # the caller did not pre-create it
                os.replace(staged, target)
        self.root.rmdir()

    def discard(self) -> None:
        """Remove the staging folder after a failure."""
        shutil.rmtree(self.root, ignore_errors=True)
