"""Feature extraction straight from raw videos: ``affectseq extract`` on a dataset without face crops.

A ``video_csv`` dataset or an ABAW tree with raw videos but no ``cropped_aligned`` folder
is extracted without writing a crop tree: DataLoader worker processes run the face stage
(:func:`affectseq.prepare.video_crops.person_crops`, the very code behind ``data faces``)
over whole videos and hand preprocessed crops to the main process, which encodes them and
commits each person's video to the store (:func:`affectseq.features.extract.commit_video`).

**Same store as through ``data faces``**: video ids, frames with a face, labels and splits
are those of the crop tree ``data faces`` would write, and each crop goes through the same
JPEG encoding (``CropOptions.jpeg_quality``) and decoder before preprocessing, so the
encoder sees the pixels it would read back from the crop files. Without that round trip
features differ by JPEG's loss, ~10x float16's rounding of them (docs/results.md, "Own videos").

Resumable per video like ``extract``: a raw video whose persons are all committed is
skipped; a video that cannot be read fails alone (not committed, retried by the next run,
:class:`~affectseq.features.extract.ExtractIncomplete` at the end). :func:`extract_raw_jobs` is
the per-video work of both engines: this process (``--workers`` face-stage processes) and
``--engine ray`` (one task per raw video, :mod:`affectseq.scale.ray_engine`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from affectseq.data.abaw import AnnotatedVideo
from affectseq.data.abaw_annotations import TASKS
from affectseq.data.crop_export import CropJob, plan_crop_jobs
from affectseq.data.splits import normalise_split
from affectseq.features.extract import (ExtractReport, commit_video, encode_batch, extract_into_store,
                                        resolve_device)
from affectseq.features.extract_jobs import VideoJob, worker_init
from affectseq.features.store import FEATURE_DTYPE
from affectseq.prepare.video_crops import CropOptions, decode_crop, person_crops
from affectseq.utils.progress import make_progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawVideoDataset:
    """The ABAW-dataset view of the raw videos' persons that :func:`~affectseq.features.extract.open_store`
    reads: root, tasks, classes, and per task and split the annotated videos under their store ids."""

    root: Path
    tasks: tuple[str, ...]
    expr_classes: tuple[str, ...]
    annotated: dict[tuple[str, str], list[AnnotatedVideo]]
    label_level: str = "frame"  # "clip" for a clip dataset (one label per clip)
    layout: str = ""

    def splits(self, task: str) -> tuple[str, ...]:
        return tuple(sorted(s for t, s in self.annotated if t == task))

    def videos(self, task: str, split: str) -> list[AnnotatedVideo]:
        return self.annotated.get((task, split), [])


def plan_raw_videos(root: str | os.PathLike[str], layout: str | None = None,
                    **layout_options: Any) -> tuple[RawVideoDataset, list[CropJob], dict[str, VideoJob]]:
    """``(dataset, crop jobs, {video_id: VideoJob})``: the raw videos and the store entries of their persons.

    A person's ``VideoJob.has_face`` starts all False; extraction fills it from the faces found.
    ``layout``/``layout_options``: as :func:`affectseq.data.registry.open_dataset`.
    """
    plan = plan_crop_jobs(root, layout, **layout_options)
    crop_jobs = plan.jobs
    for note in plan.notes:
        log.warning("%s", note)
    people: dict[str, VideoJob] = {}
    annotated: dict[tuple[str, str], list[AnnotatedVideo]] = {}
    expr_classes: tuple[str, ...] = ()
    for job in crop_jobs:
        for person in job.persons:
            n_frames = max(s.n_frames for s in person.sources)
            splits = {s.task.lower(): normalise_split(s.split) for s in person.sources}
            people[person.video_id] = VideoJob(person.video_id, n_frames, np.zeros(n_frames, bool),
                                               person.sources, splits)
            for source in person.sources:  # under the id the crop tree gives the person
                annotated.setdefault((source.task, source.split), []).append(
                    dataclasses.replace(source, video_id=person.video_id))
                expr_classes = expr_classes or (source.expr_classes if source.task == "EXPR" else ())
    tasks = tuple(t for t in TASKS if any(t == task for task, _ in annotated))  # AbawDataset's order
    expr_classes = plan.expr_classes or expr_classes
    return (RawVideoDataset(Path(root), tasks, expr_classes, annotated, plan.label_level, plan.layout), crop_jobs,
            people)


class VideoFaceBatches(torch.utils.data.IterableDataset):
    """Preprocessed face crops of raw videos in batches, made by DataLoader workers (one video at a time).

    Items (``batch_size=None``): ``{"job", "video_ids", "frame_idx", "x"}`` batches of one raw
    video, then ``{"job", "done": True, "error"}`` when that video is finished (``error``: why it
    failed, or ""). Worker ``w`` of ``n`` takes videos ``w, w + n, ...``.
    """

    def __init__(self, jobs: Sequence[CropJob], spec: Any, options: CropOptions, framing: str | None,
                 batch_size: int):
        self.jobs, self.spec, self.options = list(jobs), spec, options
        self.framing, self.batch_size = framing, batch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for pos in range(worker, len(self.jobs), n_workers):
            error = ""
            try:
                yield from self._batches(pos)
            except Exception as err:  # noqa: BLE001 -- one unreadable video fails alone (module docstring)
                from affectseq.predict.batch import describe_failure

                error = describe_failure(self.jobs[pos].video, err)
            yield {"job": pos, "done": True, "error": error}

    def _batches(self, pos: int) -> Iterator[dict[str, Any]]:
        from affectseq.features.preprocess import preprocess_faces

        rows: list[tuple[str, int, torch.Tensor]] = []
        with tempfile.TemporaryDirectory(prefix="affectseq-faces-") as scratch:
            for video_id, frame_idx, jpeg in person_crops(self.jobs[pos], self.options, Path(scratch)):
                # Per crop, as extraction from crop files preprocesses them (same pixels, same ops).
                rows.append((video_id, frame_idx, preprocess_faces(self.spec, decode_crop(jpeg), self.framing)[0]))
                if len(rows) == self.batch_size:
                    yield self._batch(pos, rows)
                    rows = []
        if rows:
            yield self._batch(pos, rows)

    @staticmethod
    def _batch(pos: int, rows: list[tuple[str, int, torch.Tensor]]) -> dict[str, Any]:
        return {"job": pos, "video_ids": [r[0] for r in rows], "frame_idx": np.array([r[1] for r in rows]),
                "x": torch.stack([r[2] for r in rows])}


def extract_raw_videos(
    root: str | os.PathLike[str],
    frame_model: torch.nn.Module,
    out_dir: str | os.PathLike[str],
    *,
    options: CropOptions = CropOptions(),
    checkpoint_path: str | os.PathLike[str] | None = None,
    batch_size: int = 128,
    num_workers: int = 2,
    device: str = "auto",
    progress: bool | None = None,
    layout: str | None = None,
    layout_options: dict[str, Any] | None = None,
) -> ExtractReport:
    """Extract the features of every annotated person of the raw videos at ``root`` into the store ``out_dir``.

    The store equals extracting from ``affectseq data faces root --out CROPS`` with the same
    ``options`` (see module docstring). Resumable; raises
    :class:`~affectseq.features.extract.ExtractIncomplete` when some videos failed.
    ``layout``/``layout_options``: as :func:`affectseq.data.registry.open_dataset`.
    """
    dataset, crop_jobs, people = plan_raw_videos(root, layout, **(layout_options or {}))

    def run(writer: Any) -> ExtractReport:
        return extract_raw_jobs(unfinished_jobs(crop_jobs, writer), people, frame_model, writer, options,
                                batch_size=batch_size, num_workers=num_workers, device=device, progress=progress)

    return extract_into_store(out_dir, frame_model, dataset, sorted(people), run, checkpoint_path)


def unfinished_jobs(jobs: Sequence[CropJob], writer: Any) -> list[CropJob]:
    """The raw videos some of whose persons are not yet in the store: the ones a run extracts."""
    return [job for job in jobs if not all(writer.is_done(p.video_id) for p in job.persons)]


def extract_raw_jobs(
    jobs: Sequence[CropJob],
    people: dict[str, VideoJob],
    frame_model: torch.nn.Module,
    writer: Any,
    options: CropOptions,
    *,
    batch_size: int = 128,
    num_workers: int = 2,
    device: str = "auto",
    update_manifest: bool = True,
    progress: bool | None = None,
) -> ExtractReport:
    """Find, encode and commit the persons of the raw videos ``jobs`` (``people``: their store entries).

    The per-video work of every engine: this process with ``num_workers`` face-stage processes,
    or one Ray task per video (``update_manifest=False``; the driver rebuilds the manifest).
    """
    started = time.perf_counter()
    report = ExtractReport()
    dev = resolve_device(device)
    model = frame_model.to(dev).eval()
    buffers: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # persons in flight only: memory stays flat
    batches = VideoFaceBatches(jobs, model.spec, options, "abaw112", batch_size)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=min(num_workers, len(jobs)),
                                         worker_init_fn=worker_init)
    with make_progress(disable=None if progress is None else not progress) as bar, torch.inference_mode():
        task = bar.add_task("extract (faces from videos)", total=len(jobs))
        for item in loader:
            if "x" in item:
                _store_batch(item, encode_batch(model, item["x"], dev), people, buffers, report)
                continue
            for person in jobs[int(item["job"])].persons:
                _commit_person(person.video_id, item["error"], people, buffers, writer, report, update_manifest)
            bar.advance(task)
    report.seconds = time.perf_counter() - started
    return report


def _commit_person(video_id: str, error: str, people: dict[str, VideoJob],
                   buffers: dict[str, tuple[np.ndarray, np.ndarray]], writer: Any, report: ExtractReport,
                   update_manifest: bool) -> None:
    """A finished raw video's person: committed, or failed (not committed, retried by the next run)."""
    feats, valid = buffers.pop(video_id, (None, None))  # None: no face at all
    if error:
        report.failed.append(video_id)
        report.errors.append(error)
        log.warning("%s: not committed (%s); the next run retries it", video_id, error)
    elif not writer.is_done(video_id):  # (a person of a half-done two-person video may be)
        if valid is not None:
            people[video_id].has_face = valid  # a face found = a crop data faces writes
        commit_video(writer, people[video_id], feats, valid, int(writer.header["feature_dim"]),
                     update_manifest=update_manifest)
        report.n_written += 1


def _store_batch(item: dict[str, Any], out: np.ndarray, people: dict[str, VideoJob],
                 buffers: dict[str, tuple[np.ndarray, np.ndarray]], report: ExtractReport) -> None:
    """Put a batch's features in their persons' buffers; frames past the annotations are dropped,
    as the crop tree's reader ignores crops beyond the annotated frames."""
    for row, (video_id, frame_idx) in enumerate(zip(item["video_ids"], item["frame_idx"])):
        if video_id not in buffers:
            n = people[video_id].n_frames
            buffers[video_id] = (np.zeros((n, out.shape[1]), FEATURE_DTYPE), np.zeros(n, bool))
        feats, valid = buffers[video_id]
        if frame_idx < len(valid):
            feats[frame_idx], valid[frame_idx] = out[row], True
            report.n_frames_encoded += 1
