"""Predict over many videos and folders: one atomic output folder per video, never stopping at a bad file.

For each input video, ``OUT/<name>/`` gets the files of the output writers
(:mod:`affectseq.predict.writers`: ``frames.csv`` or ``frames.parquet``, ``timeline.png``,
optionally ``overlay.mp4``, then ``summary.json``). Promises
(``docs/reliability.md``):

* **names** -- ``<name>`` is :func:`affectseq.utils.naming.safe_name` of the file
  stem: one path component, never ``.``/``..``, bounded length. When that folder
  holds another video's results (or another input of the run took it), the video
  goes to ``<name>-<hash of its resolved path>`` instead (:func:`claim_folder`);
* **publishing** -- the folder is built under a temporary name and moved into place
  only when complete, replacing only an earlier folder of the *same* source
  (:mod:`affectseq.utils.publish`); nothing else is ever deleted;
* **skipping** -- ``summary.json`` records a fingerprint (source, model, options:
  :func:`~affectseq.predict.outputs.run_fingerprint`); a rerun skips a video only on
  a full match and says why it redoes one otherwise;
* **one writer** -- a run holds ``OUT/.affectseq.lock`` (:mod:`affectseq.utils.lock`);
* **one bad video never sinks the batch** -- any exception of one video (but
  KeyboardInterrupt/SystemExit) is that video's one-line failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from affectseq.errors import AffectseqError, InputError, first_line
from affectseq.io.video import VIDEO_SUFFIXES
from affectseq.predict import outputs
from affectseq.predict.pipeline import PredictOptions, VideoPrediction, predict_video_table
from affectseq.predict.stages import ModelBundle
from affectseq.predict.writers import OutputOptions, write_outputs
from affectseq.utils.fsguard import is_special_file
from affectseq.utils.interrupt import sigterm_as_interrupt
from affectseq.utils.lock import LOCK_FILE, hold_lock
from affectseq.utils.naming import display_name, safe_name, short_hash
from affectseq.utils.publish import partial_dir, publish_dir, remove_partials

log = logging.getLogger(__name__)


@dataclass
class VideoOutcome:
    """What happened to one input video: ``status`` is ``done``, ``skipped`` or ``failed``.

    ``note`` says why a video was redone or sent to another folder (empty otherwise).
    """

    video: Path
    out_dir: Path
    status: str
    message: str = ""
    summary: dict[str, Any] | None = None
    note: str = ""


@dataclass(frozen=True)
class VideoPlan:
    """What a batch will do with one video: ``action`` is ``new``, ``redo`` or ``skip``; ``note`` says why."""

    video: Path
    out_dir: Path
    action: str
    note: str
    fingerprint: dict[str, Any]


@dataclass
class BatchReport:
    """All outcomes of a batch (in input order once the batch ends) and the batch-level files written
    (``files``: writer name -> path, e.g. ``clips``); ``exit_code`` is 1 when any video failed."""

    outcomes: list[VideoOutcome] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

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


class OutcomeRecorder:
    """A batch's report plus the caller's per-video callback: every engine (this process, ``--workers``,
    Ray) records each outcome through one, in the order outcomes become known."""

    def __init__(self, on_outcome: Callable[[VideoOutcome], None] | None = None):
        self.report = BatchReport(outcomes=[])
        self.on_outcome = on_outcome

    def __call__(self, outcomes: Iterable[VideoOutcome]) -> None:
        for outcome in outcomes:
            self.report.outcomes.append(outcome)
            if self.on_outcome:
                self.on_outcome(outcome)


def collect_videos(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Expand inputs: a folder gives its video files (recursively, sorted); a file is taken as given.

    A file is kept whatever its suffix, so a mistaken input fails with a clear
    message for that file instead of being silently ignored; a missing path is
    kept for the same reason. Inside folders, affectseq's own outputs (an
    ``overlay.mp4`` beside its ``summary.json``, temporary folders) are not inputs.
    """
    videos: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            # Special files named like videos are kept, to fail with one line (never opened).
            found = sorted(p for p in path.rglob("*") if (p.is_file() or is_special_file(p))
                           and p.suffix.lower() in VIDEO_SUFFIXES
                           and not p.name.startswith(".") and not _is_affectseq_output(p))
            if not found:
                log.warning("%s: folder holds no video files (%s)", path, ", ".join(sorted(VIDEO_SUFFIXES)))
            videos.extend(found)
        else:
            videos.append(path)
    seen: set[Path] = set()
    return [v for v in videos if not (v.resolve() in seen or seen.add(v.resolve()))]  # type: ignore[func-returns-value]


def _is_affectseq_output(path: Path) -> bool:
    """An overlay a previous run wrote, or any file in one of affectseq's temporary folders."""
    if path.name == outputs.OVERLAY_FILE and (path.parent / outputs.SUMMARY_FILE).is_file():
        return True
    return any(part.startswith(".affectseq-") for part in path.parts[:-1])


def output_name(video: Path) -> str:
    """The preferred output folder name of ``video``: its file stem made safe (:func:`safe_name`)."""
    return safe_name(video.stem)


def fallback_name(video: Path) -> str:
    """The folder name used when the preferred one holds another video: ``<name>-<hash of resolved path>``."""
    return f"{output_name(video)}-{short_hash(str(video.resolve()))}"


def folder_holder(folder: Path) -> str | None:
    """Whose results ``folder`` holds: the source path its ``summary.json`` names; ``""`` for anything else.

    ``None`` when nothing is there. A file, a symlink or a folder without a
    readable affectseq summary gives ``""``: it is never ours to replace.
    """
    if not folder.exists() and not folder.is_symlink():
        return None
    if folder.is_symlink() or not folder.is_dir():
        return ""
    return outputs.summary_source(outputs.read_summary(folder)) or ""


def is_ours(folder: Path, video: Path) -> bool:
    """Whether ``folder`` holds an earlier result made from ``video`` (same resolved path)."""
    return folder_holder(folder) == str(video.resolve())


def claim_folder(video: Path, out_root: Path, taken: set[Path]) -> tuple[Path, str]:
    """The output folder for ``video`` and a note when it is not the preferred one.

    Candidates: ``OUT/<name>`` then ``OUT/<name>-<hash>``. One holding this video's
    earlier result wins (so reruns find it whatever else is in the run); else the
    first that is absent and not ``taken`` by another input of this run. InputError
    naming both when each holds something else.
    """
    candidates = [out_root / output_name(video), out_root / fallback_name(video)]
    free = [c for c in candidates if c not in taken]
    for folder in free:
        if is_ours(folder, video):
            return folder, ""
    for folder in free:
        if folder_holder(folder) is None:
            if folder == candidates[0]:
                return folder, ""
            return folder, f"{candidates[0]} {_held_by(candidates[0], taken)}; writing {folder.name} instead"
    raise InputError(video, f"output folders {candidates[0]} and {candidates[1]} both hold other files "
                            f"({_held_by(candidates[0], taken)}); choose another output folder")


def _held_by(folder: Path, taken: set[Path]) -> str:
    if folder in taken:
        return "is used by another input of this run"
    holder = folder_holder(folder)
    return f"holds the results of {display_name(holder)}" if holder else "holds files affectseq did not write"


def output_dirs(videos: Sequence[Path], out_root: Path) -> list[Path]:
    """The output folder of each video, as a batch into ``out_root`` would choose them (:func:`claim_folder`)."""
    taken: set[Path] = set()
    dirs = []
    for video in videos:
        folder = claim_folder(video, out_root, taken)[0]
        taken.add(folder)
        dirs.append(folder)
    return dirs


def predict_fingerprint(options: PredictOptions, face_source_factory: Any = None, aligner: Any = None
                        ) -> dict[str, Any]:
    """The prediction options recorded in the fingerprint: those that change the frames table.

    ``PredictOptions.fingerprint()`` (batch size, threads and progress give identical results and are
    declared out of it); a custom face source or aligner (Python API) is recorded by name.
    """
    def name(fn: Any) -> str:
        return "default" if fn is None else f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"

    return {**options.fingerprint(), "face_source": name(face_source_factory), "aligner": name(aligner)}


def expected_fingerprint(video: Path, model_info: Mapping[str, Any], options: PredictOptions,
                         output_options: OutputOptions, face_source_factory: Any = None,
                         aligner: Any = None) -> dict[str, Any]:
    """The fingerprint a fresh prediction of ``video`` with these settings records in ``summary.json``."""
    return outputs.run_fingerprint(outputs.source_fingerprint(video), model_info,
                                   predict_fingerprint(options, face_source_factory, aligner),
                                   output_options.fingerprint())


def plan_video(video: Path, out_root: Path, taken: set[Path], fingerprint: Mapping[str, Any],
               overwrite: bool) -> VideoPlan:
    """Choose ``video``'s folder and whether to skip it (full fingerprint match), redo it, or write it new."""
    out_dir, note = claim_folder(video, out_root, taken)
    if folder_holder(out_dir) is None:
        return VideoPlan(video, out_dir, "new", note, dict(fingerprint))
    changes = outputs.fingerprint_changes(
        (outputs.read_summary(out_dir) or {}).get("fingerprint"), fingerprint)
    if not changes and not overwrite:
        return VideoPlan(video, out_dir, "skip", note, dict(fingerprint))
    why = "--overwrite" if not changes else "; ".join(changes)
    return VideoPlan(video, out_dir, "redo", "; ".join(filter(None, [note, f"redone: {why}"])), dict(fingerprint))


def plan_batch(videos: Sequence[Path], out_root: Path, fingerprint_of: Callable[[Path], Mapping[str, Any]],
               overwrite: bool) -> list[VideoPlan | VideoOutcome]:
    """A plan per video, in order; a video whose folder cannot be chosen is a failed outcome instead."""
    taken: set[Path] = set()
    plans: list[VideoPlan | VideoOutcome] = []
    for video in videos:
        try:
            plan = plan_video(video, out_root, taken, fingerprint_of(video), overwrite)
        except Exception as err:  # noqa: BLE001 -- one video's problem, reported like any failure
            plans.append(failed_outcome(video, out_root, err))
            continue
        taken.add(plan.out_dir)
        plans.append(plan)
    return plans


def skipped_outcome(plan: VideoPlan) -> VideoOutcome:
    """The outcome of a video whose folder is up to date."""
    return VideoOutcome(plan.video, plan.out_dir, "skipped",
                        f"{plan.out_dir}: up to date for {display_name(str(plan.video))} (use --overwrite to redo)",
                        note=plan.note)


def failed_outcome(video: Path, out_dir: Path, err: BaseException) -> VideoOutcome:
    """One video's failure as one line: the error's own message for affectseq errors, else class and message."""
    log.debug("failure on %s", display_name(str(video)), exc_info=err)
    return VideoOutcome(video, out_dir, "failed", describe_failure(video, err))


def describe_failure(video: Path, err: BaseException) -> str:
    """``"<video>: <Class>: <first line>"`` (affectseq errors already name their file), printable, one line."""
    first = first_line(err)
    if isinstance(err, AffectseqError) and first:
        return display_name(first)
    detail = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return display_name(f"{video}: {detail}")


def check_output_root(out_root: Path) -> None:
    """Create ``out_root`` and prove it is writable; InputError naming it otherwise."""
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_root, prefix=".affectseq-write-test-"):
            pass
    except OSError as err:
        raise InputError(out_root, f"output directory is not writable ({err.strerror or err})") from None


@contextlib.contextmanager
def output_session(out_root: Path, purpose: str = "predict") -> Iterator[None]:
    """Own ``out_root`` for a run: its lock (a second run fails with a clear message), SIGTERM as Ctrl-C,
    and the temporary folders a killed earlier run left, cleared."""
    with sigterm_as_interrupt(), hold_lock(out_root / LOCK_FILE, purpose):
        for leftover in remove_partials(out_root):
            log.info("removed %s, left by an interrupted run", leftover)
        yield


def is_finished(out_dir: Path) -> bool:
    """A video's outputs are complete when its folder holds ``summary.json`` (written last)."""
    return (out_dir / outputs.SUMMARY_FILE).is_file()


def write_video_outputs(
    video: Path, out_dir: Path, prediction: VideoPrediction, options: OutputOptions, stride: int = 1
) -> dict[str, float]:
    """Write all files of one video into ``out_dir`` (an empty, temporary folder): each writer of ``options``
    (:mod:`affectseq.predict.writers`), ``summary.json`` last; seconds per file."""
    return write_outputs(video, out_dir, prediction, options, stride)


def predict_one(
    video: Path,
    out_dir: Path,
    bundle: ModelBundle,
    options: PredictOptions,
    output_options: OutputOptions,
    face_source_factory: Callable[[], Any] | None = None,
    aligner: Callable[..., Any] | None = None,
    on_frame: Callable[[int, int], None] | None = None,
) -> VideoPrediction:
    """Predict one video and publish its folder atomically (nothing is left on failure).

    An existing ``out_dir`` is replaced only when it holds an earlier result of this
    same video; anything else there raises InputError and is left untouched.
    ``on_frame``: progress callback, as in :func:`~affectseq.predict.pipeline.predict_video_table`.
    """
    prediction = predict_for_outputs(video, bundle, options, output_options, face_source_factory, aligner,
                                     on_frame)
    publish_prediction(video, out_dir, prediction, output_options, options.stride)
    return prediction


def predict_for_outputs(video: Path, bundle: ModelBundle, options: PredictOptions, output_options: OutputOptions,
                        face_source_factory: Callable[[], Any] | None = None,
                        aligner: Callable[..., Any] | None = None,
                        on_frame: Callable[[int, int], None] | None = None) -> VideoPrediction:
    """The prediction of one video with its run fingerprint in the summary (nothing written yet)."""
    video = Path(video)
    # Fingerprint before predicting: a source that changes meanwhile is redone by the next run.
    fingerprint = expected_fingerprint(video, bundle.info.to_dict(), options, output_options,
                                       face_source_factory, aligner)
    face_source = face_source_factory() if face_source_factory else None
    extra = {"aligner": aligner} if aligner is not None else {}
    # An absolute path: FFmpeg reads a relative "a:b.mp4" as protocol "a".
    prediction = predict_video_table(video.absolute(), bundle, options, face_source=face_source, on_frame=on_frame,
                                     **extra)
    prediction.summary["fingerprint"] = fingerprint
    if prediction.summary["frames_with_face"] == 0:
        log.warning("%s: no face found; every frame is listed without predictions", display_name(str(video)))
    return prediction


def publish_prediction(video: Path, out_dir: Path, prediction: VideoPrediction, output_options: OutputOptions,
                       stride: int = 1) -> None:
    """Write a prediction's files into a temporary folder and publish it as ``out_dir`` (atomically)."""
    video, out_dir = Path(video), Path(out_dir)
    with partial_dir(out_dir.parent) as tmp:
        written = write_video_outputs(video.absolute(), tmp, prediction, output_options, stride=stride)
        # A redo replaces only the files the earlier run listed as its own; a user's files stay.
        publish_dir(tmp, out_dir, lambda folder: is_ours(folder, video), owned=outputs.files_written,
                    last=outputs.SUMMARY_FILE)
    prediction.timings.update({f"write_{name}": sec for name, sec in written.items()})


def predict_planned(plan: VideoPlan, bundle: ModelBundle, options: PredictOptions, output_options: OutputOptions,
                    face_source_factory: Callable[[], Any] | None = None,
                    aligner: Callable[..., Any] | None = None) -> VideoOutcome:
    """Carry out one plan: skip, or predict and publish; any failure (but Ctrl-C/exit) becomes the outcome."""
    if plan.action == "skip":
        return skipped_outcome(plan)
    try:
        pred = predict_one(plan.video, plan.out_dir, bundle, options, output_options, face_source_factory, aligner)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as err:  # noqa: BLE001 -- one bad video must never stop the batch
        return failed_outcome(plan.video, plan.out_dir, err)
    return VideoOutcome(plan.video, plan.out_dir, "done", summary=pred.summary, note=plan.note)


SHORT_VIDEO_FRAMES = 750  # 30 s at 25 fps: videos this short are predicted two at a time (predict_plans)


def predict_plans(plans: Iterable[VideoPlan | VideoOutcome], bundle: ModelBundle, options: PredictOptions,
                  output_options: OutputOptions, record: Callable[[Iterable[VideoOutcome]], None],
                  face_source_factory: Callable[[], Any] | None = None,
                  aligner: Callable[..., Any] | None = None) -> None:
    """Carry out ``plans`` in this process, recording outcomes in input order; the same files as
    :func:`predict_planned`, with less waiting between videos.

    A video's pipeline fills at its start (decoding and the first full face detection run ahead of
    tracking) and drains at its end (the model's last batch); with many short clips those waits and
    the per-video writing would be paid once per clip (``benchmarks/clips_speed.py``). So:

    * each video's files (table, ``timeline.png``, publishing) are written in one writer thread while
      the next video is predicted;
    * videos of at most ``SHORT_VIDEO_FRAMES`` frames (header count) are predicted two at a time, in
      threads, without a progress bar each; longer ones alone, in this thread, as before.

    Predictions do not depend on what else runs (each video has its own face tracker and batches).
    """
    from concurrent.futures import ThreadPoolExecutor

    def predict(plan: VideoPlan, opts: PredictOptions) -> VideoPrediction:
        return predict_for_outputs(plan.video, bundle, opts, output_options, face_source_factory, aligner)

    quiet = dataclasses.replace(options, progress=False)
    videos = ThreadPoolExecutor(max_workers=2, thread_name_prefix="affectseq-video")
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="affectseq-write") as writer:
            batch = _InOrder(record, writer, output_options, options.stride)
            for plan in plans:
                if isinstance(plan, VideoOutcome) or plan.action == "skip":
                    batch.add(plan if isinstance(plan, VideoOutcome) else skipped_outcome(plan), None)
                elif _is_short(plan.video):
                    batch.add(plan, videos.submit(predict, plan, quiet))
                    batch.settle(keep=1)  # at most two clips in flight
                    continue
                else:
                    batch.settle(keep=0)
                    batch.add(plan, _done_future(predict, plan, options))  # here, with its progress bar
                batch.settle(keep=0)
            batch.settle(keep=0)
            batch.flush_writes()
    finally:
        videos.shutdown(wait=True, cancel_futures=True)


class _InOrder:
    """A batch's videos in input order: predictions in flight, then their writes; outcomes recorded in order."""

    def __init__(self, record: Callable[[Iterable[VideoOutcome]], None], writer: Any, output_options: OutputOptions,
                 stride: int):
        from collections import deque

        self.record, self.writer, self.output_options, self.stride = record, writer, output_options, stride
        self.queue: Any = deque()  # (plan or known outcome, Future of its prediction or None)
        self.writes: list[Any] = []

    def add(self, plan: VideoPlan | VideoOutcome, future: Any) -> None:
        self.queue.append((plan, future))

    def flush_writes(self) -> None:
        self.record([future.result() for future in self.writes])
        self.writes.clear()

    def settle(self, keep: int) -> None:
        """Record (or hand to the writer) the queue's head until ``keep`` videos are left in flight."""
        while len(self.queue) > keep:
            plan, future = self.queue.popleft()
            if future is None:  # an outcome known without predicting
                self.flush_writes()
                self.record([plan])
                continue
            try:
                prediction = future.result()
            except (KeyboardInterrupt, SystemExit, GeneratorExit):
                raise
            except BaseException as err:  # noqa: BLE001 -- one bad video must never stop the batch
                self.flush_writes()
                self.record([failed_outcome(plan.video, plan.out_dir, err)])
                continue
            self.flush_writes()  # the previous video's folder, written meanwhile
            self.writes.append(self.writer.submit(_publish_planned, plan, prediction, self.output_options,
                                                  self.stride))


def _is_short(video: Path) -> bool:
    from affectseq.io.video import header_frame_count

    try:
        return 0 < header_frame_count(video) <= SHORT_VIDEO_FRAMES
    except Exception:  # noqa: BLE001 -- an unreadable file fails in its own prediction, with its own message
        return False


def _done_future(fn: Callable[..., Any], *args: Any) -> Any:
    """A finished Future of ``fn(*args)`` run in this thread (its exception kept, Ctrl-C raised at once)."""
    from concurrent.futures import Future

    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as err:  # noqa: BLE001 -- recorded as the video's failure by settle()
        future.set_exception(err)
    return future


def _publish_planned(plan: VideoPlan, prediction: VideoPrediction, output_options: OutputOptions,
                     stride: int) -> VideoOutcome:
    try:
        publish_prediction(plan.video, plan.out_dir, prediction, output_options, stride)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise  # re-raised in the batch's thread by settle(): the batch stops, as without the writer thread
    except BaseException as err:  # noqa: BLE001 -- a failed write is that video's failure
        return failed_outcome(plan.video, plan.out_dir, err)
    return VideoOutcome(plan.video, plan.out_dir, "done", summary=prediction.summary, note=plan.note)

