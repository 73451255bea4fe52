"""Predict over many videos and folders: one atomic output folder per video, never stopping at a bad file.

For each input video, ``OUT/<video-stem>/`` gets ``frames.csv`` (or
``frames.parquet``), ``summary.json``, ``timeline.png`` and optionally
``overlay.mp4``. The folder is built under a temporary name and renamed into
place only when complete, so a crash or a bad video leaves nothing
half-written. A folder with ``summary.json`` is finished and is skipped on the
next run unless ``overwrite``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from affectseq.errors import AffectseqError, InputError
from affectseq.predict import outputs
from affectseq.predict.pipeline import PredictOptions, VideoPrediction, predict_video_table
from affectseq.predict.stages import ModelBundle
from affectseq.utils.atomic import atomic_path

log = logging.getLogger(__name__)

VIDEO_SUFFIXES: frozenset[str] = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts", ".3gp",
})


@dataclass(frozen=True)
class OutputOptions:
    """Which files to write per video."""

    table_format: str = "csv"       # "csv" or "parquet"
    timeline: bool = True
    overlay: bool = False
    keep_audio: bool = False


@dataclass
class VideoOutcome:
    """What happened to one input video: ``status`` is ``done``, ``skipped`` or ``failed``."""

    video: Path
    out_dir: Path
    status: str
    message: str = ""
    summary: dict[str, Any] | None = None


@dataclass
class BatchReport:
    """All outcomes of a batch; ``exit_code`` is 1 when any video failed."""

    outcomes: list[VideoOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        return 1 if self.count("failed") else 0

    def format(self) -> str:
        lines = [f"{self.count('done')} done, {self.count('skipped')} skipped (already finished), "
                 f"{self.count('failed')} failed"]
        lines += [f"  failed: {o.message}" for o in self.outcomes if o.status == "failed"]
        return "\n".join(lines)


def collect_videos(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Expand inputs: a folder gives its video files (recursively, sorted); a file is taken as given.

    A file is kept whatever its suffix, so a mistaken input fails with a clear
    message for that file instead of being silently ignored; a missing path is
    kept for the same reason.
    """
    videos: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                           and not p.name.startswith("."))
            if not found:
                log.warning("%s: folder holds no video files (%s)", path, ", ".join(sorted(VIDEO_SUFFIXES)))
            videos.extend(found)
        else:
            videos.append(path)
    seen: set[Path] = set()
    return [v for v in videos if not (v.resolve() in seen or seen.add(v.resolve()))]  # type: ignore[func-returns-value]


def output_dirs(videos: Sequence[Path], out_root: Path) -> list[Path]:
    """``OUT/<stem>`` per video; stems shared by several inputs get the suffix added (``clip_mov``)."""
    stems = [v.stem for v in videos]
    dirs = []
    used: set[str] = set()
    for video, stem in zip(videos, stems):
        name = stem if stems.count(stem) == 1 else f"{stem}_{video.suffix.lstrip('.').lower()}"
        base, n = name, 2
        while name in used:  # same stem and suffix in different folders
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        dirs.append(out_root / name)
    return dirs


def check_output_root(out_root: Path) -> None:
    """Create ``out_root`` and prove it is writable; InputError naming it otherwise."""
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_root, prefix=".affectseq-write-test-"):
            pass
    except OSError as err:
        raise InputError(out_root, f"output directory is not writable ({err.strerror or err})") from None


def is_finished(out_dir: Path) -> bool:
    """A video's outputs are complete when its folder holds ``summary.json`` (written last)."""
    return (out_dir / outputs.SUMMARY_FILE).is_file()


def write_video_outputs(
    video: Path, out_dir: Path, prediction: VideoPrediction, options: OutputOptions, stride: int = 1
) -> dict[str, float]:
    """Write all files of one video into ``out_dir`` (an empty, temporary folder); seconds per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    start = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal start
        now = time.perf_counter()
        seconds[name], start = now - start, now

    outputs.write_frames_table(prediction.table, out_dir, options.table_format)
    lap("table_sec")
    if options.timeline:
        from affectseq.predict.timeline import draw_timeline

        draw_timeline(prediction.table, prediction.classes, out_dir / outputs.TIMELINE_FILE,
                      title=video.name, summary=prediction.summary, has_va=prediction.has_va)
        lap("timeline_sec")
    if options.overlay:
        from affectseq.predict.overlay import write_overlay

        write_overlay(video, prediction.table, prediction.classes, out_dir / outputs.OVERLAY_FILE,
                      has_va=prediction.has_va, keep_audio=options.keep_audio, stride=stride)
        lap("overlay_sec")
    outputs.write_summary(prediction.summary, out_dir)
    lap("summary_sec")
    return seconds


def _remove_stale_partials(out_dir: Path) -> None:
    """Delete temporary folders a killed earlier run left for this video (``.<name>.*.tmp``)."""
    import shutil

    for stale in out_dir.parent.glob(f".{out_dir.name}.*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def predict_one(
    video: Path,
    out_dir: Path,
    bundle: ModelBundle,
    options: PredictOptions,
    output_options: OutputOptions,
    face_source_factory: Callable[[], Any] | None = None,
    aligner: Callable[..., Any] | None = None,
) -> VideoPrediction:
    """Predict one video and publish its folder atomically (nothing is left on failure)."""
    face_source = face_source_factory() if face_source_factory else None
    extra = {"aligner": aligner} if aligner is not None else {}
    prediction = predict_video_table(video, bundle, options, face_source=face_source, **extra)
    if prediction.summary["frames_with_face"] == 0:
        log.warning("%s: no face found; every frame is listed without predictions", video)
    _remove_stale_partials(out_dir)
    with atomic_path(out_dir) as tmp:
        written = write_video_outputs(video, tmp, prediction, output_options, stride=options.stride)
    prediction.timings.update({f"write_{name}": sec for name, sec in written.items()})
    return prediction


def run_batch(
    inputs: Sequence[str | os.PathLike[str]],
    out_root: str | os.PathLike[str],
    bundle: ModelBundle,
    options: PredictOptions = PredictOptions(),
    output_options: OutputOptions = OutputOptions(),
    *,
    overwrite: bool = False,
    face_source_factory: Callable[[], Any] | None = None,
    aligner: Callable[..., Any] | None = None,
    on_outcome: Callable[[VideoOutcome], None] | None = None,
) -> BatchReport:
    """Predict every video in ``inputs`` into ``out_root``; failures are recorded, not raised.

    ``face_source_factory`` makes a fresh face source per video and ``aligner``
    replaces the alignment (defaults: the tracker from ``options``, ``align_face``). ``on_outcome`` is called after each video (the CLI
    prints a line).
    """
    from affectseq.errors import ConfigError

    if options.mode == "causal" and not bundle.causal_ok:  # once, not once per video
        raise ConfigError(f"model {bundle.info.model_id} has a bidirectional temporal model: use --mode offline")
    root = Path(out_root)
    check_output_root(root)
    videos = collect_videos(inputs)
    report = BatchReport()
    for video, out_dir in zip(videos, output_dirs(videos, root)):
        if is_finished(out_dir) and not overwrite:
            outcome = VideoOutcome(video, out_dir, "skipped", f"{out_dir} exists (use --overwrite to redo)")
        else:
            try:
                pred = predict_one(video, out_dir, bundle, options, output_options, face_source_factory, aligner)
                outcome = VideoOutcome(video, out_dir, "done", summary=pred.summary)
            except AffectseqError as err:
                outcome = VideoOutcome(video, out_dir, "failed", str(err))
            except (OSError, RuntimeError, ValueError, MemoryError) as err:
                # Unexpected failures of one video must not stop the batch; keep the message one line.
                log.debug("failure on %s", video, exc_info=True)
                detail = str(err).splitlines()[0] if str(err) else ""
                outcome = VideoOutcome(video, out_dir, "failed", f"{video}: {type(err).__name__}: {detail}")
        report.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return report
