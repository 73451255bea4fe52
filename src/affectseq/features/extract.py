"""Feature extraction: run a trained frame model over every face crop of a dataset into a feature store.

``extract_features(dataset, frame_model, out_dir)`` is the Python API behind
``affectseq extract``. JPEG decoding and preprocessing run in DataLoader worker
processes (bounded prefetch, so memory stays flat); the encoder runs batched in
the main process on ``device``. Each video is committed atomically as soon as
its last crop is encoded, so a killed run loses at most the videos in flight and
a re-run skips every finished video. A frame without a crop file is "no face"
(masked, ``feature_valid=False``); a crop file that exists but cannot be read fails
its video: the video is not committed, the other videos are, and the run ends with
:class:`ExtractIncomplete` naming it, so the next run retries it.

Every engine (crops or raw videos; this process or Ray tasks on a shared directory) runs
inside :func:`extract_into_store`: open the store, record the planned videos, extract the
unfinished ones (parallel engines: :func:`extract_videos` on subsets with
``update_manifest=False``), then ``StoreWriter.rebuild_manifest()`` once. The manifest
records the planned videos, so a store missing some of them (an interrupted or failed run)
is known to be incomplete (``FeatureStore.incomplete``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from affectseq.features.extract_jobs import CropFrames, VideoJob, plan_videos, worker_init
from affectseq.features.store import FEATURE_DTYPE
from affectseq.errors import InputError
from affectseq.features.store_writer import StoreWriter, spec_to_dict
from affectseq.features.video_fps import dataset_video_fps
from affectseq.utils.devices import resolve_device
from affectseq.utils.hashing import sha256_file
from affectseq.utils.progress import make_progress

log = logging.getLogger(__name__)
MAX_LOGGED_ERRORS = 20


@dataclass
class ExtractReport:
    """What a run did: videos written/skipped/failed, frames encoded, crops missing or unreadable.

    ``n_corrupt`` counts unreadable crops (each fails its video, listed in ``failed``);
    ``n_missing`` counts crops listed by the dataset whose file is gone (masked as no face).
    """

    n_videos: int = 0
    n_skipped: int = 0
    n_written: int = 0
    n_frames_encoded: int = 0
    n_corrupt: int = 0
    n_missing: int = 0
    failed: list[str] = field(default_factory=list)  # video ids not committed (retried by the next run)
    errors: list[str] = field(default_factory=list)  # the first MAX_LOGGED_ERRORS messages
    seconds: float = 0.0

    @property
    def frames_per_sec(self) -> float:
        return self.n_frames_encoded / self.seconds if self.seconds > 0 else 0.0


class ExtractIncomplete(InputError):
    """Some videos could not be extracted (unreadable crops or raw video); the others are committed.

    ``report`` is the run's :class:`ExtractReport`. Re-running retries the failed videos.
    """

    def __init__(self, root: str | Path, report: ExtractReport):
        self.report = report
        first = f" (first: {report.errors[0]})" if report.errors else ""
        super().__init__(root, f"{len(report.failed)} of {report.n_videos} videos not extracted because their crops "
                               f"or video could not be read: {', '.join(report.failed[:5])}"
                               f"{' ...' if len(report.failed) > 5 else ''}{first}; fix them and re-run "
                               "(finished videos are kept)")


def raise_if_failed(root: str | Path, report: ExtractReport) -> ExtractReport:
    """``report`` unchanged, or :class:`ExtractIncomplete` when some videos failed."""
    if report.failed:
        raise ExtractIncomplete(root, report)
    return report


def open_store(
    out_dir: str | Path,
    frame_model: torch.nn.Module,
    dataset: Any,
    checkpoint_path: str | Path | None = None,
) -> StoreWriter:
    """Create or resume the store for ``frame_model`` (its spec + checkpoint hash) and ``dataset``'s tasks."""
    checkpoint_path = checkpoint_path or getattr(frame_model, "source_path", None)
    sha = sha256_file(checkpoint_path) if checkpoint_path else None
    spec = frame_model.spec
    return StoreWriter(
        out_dir,
        feature_dim=int(spec.feature_dim),
        encoder=spec_to_dict(spec),
        checkpoint_sha256=sha,
        checkpoint_path=str(Path(checkpoint_path).resolve()) if checkpoint_path else None,
        tasks=tuple(t.lower() for t in dataset.tasks),
        expr_classes=tuple(getattr(dataset, "expr_classes", ())) if "EXPR" in dataset.tasks else (),
        # Clip datasets: "clip" (one label per video); every other dataset has per-frame labels.
        label_level="clip" if getattr(dataset, "label_level", "frame") == "clip" else "frame",
        source=str(getattr(dataset, "root", "")) or None,
        video_fps=dataset_video_fps(dataset),
    )


def encode_batch(model: torch.nn.Module, x: torch.Tensor, device: torch.device) -> np.ndarray:
    """The store's features (float16, (N, feature_dim)) of a batch of preprocessed crops."""
    x = x.to(device, non_blocking=True)
    return model.forward_features(x).float().cpu().numpy().astype(FEATURE_DTYPE)


def commit_video(writer: StoreWriter, job: VideoJob, feats: np.ndarray | None, valid: np.ndarray | None,
                 feature_dim: int, *, update_manifest: bool = True) -> None:
    """Write one finished video: ``feats``/``valid`` per frame (None: no face crop at all, every row masked)."""
    if feats is None or valid is None:
        feats, valid = np.zeros((job.n_frames, feature_dim), FEATURE_DTYPE), np.zeros(job.n_frames, bool)
    n_missing = int((job.has_face & ~valid).sum())
    writer.write_video(job.video_id, feats, job.labels(valid), job.splits, n_missing=n_missing,
                       update_manifest=update_manifest)


def extract_videos(
    jobs: Sequence[VideoJob],
    frame_model: torch.nn.Module,
    writer: StoreWriter,
    *,
    batch_size: int = 128,
    num_workers: int = 2,
    device: str = "auto",
    framing: str | None = "abaw112",
    update_manifest: bool = True,
    progress: bool | None = None,
) -> ExtractReport:
    """Encode the face crops of ``jobs`` and commit each video to ``writer`` as soon as it is complete."""
    started = time.perf_counter()
    report = ExtractReport(n_videos=len(jobs))
    dev = resolve_device(device)
    model = frame_model.to(dev).eval()
    feature_dim = int(model.spec.feature_dim)
    frames = CropFrames(jobs, model.spec, framing)
    remaining = {pos: int(job.has_face.sum()) for pos, job in enumerate(jobs)}
    buffers: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # job -> (features, feature_valid), in flight only
    failed: set[int] = set()  # jobs with an unreadable crop: never committed

    def commit(pos: int) -> None:
        job = jobs[pos]
        feats, valid = buffers.pop(pos, (None, None))
        if pos in failed:
            report.failed.append(job.video_id)
            log.warning("%s: not committed (unreadable crops); the next run retries it", job.video_id)
            return
        commit_video(writer, job, feats, valid, feature_dim, update_manifest=update_manifest)
        report.n_written += 1

    for pos in [pos for pos, count in remaining.items() if count == 0]:
        commit(pos)
    if len(frames):
        with make_progress(disable=None if progress is None else not progress) as bar, torch.inference_mode():
            task = bar.add_task("extract", total=len(frames))
            for batch in _crop_loader(frames, batch_size, num_workers, dev):
                ok = batch["ok"].numpy().astype(bool)
                out = np.zeros((len(ok), feature_dim), FEATURE_DTYPE)
                if ok.any():
                    out[ok] = encode_batch(model, batch["x"][torch.from_numpy(ok)], dev)
                job_pos, frame_idx = batch["job"].numpy(), batch["frame_idx"].numpy()
                _note_read_errors(batch, failed, report)
                for pos in np.unique(job_pos):
                    rows = job_pos == pos
                    feats, valid = _buffer(buffers, int(pos), jobs[pos].n_frames, feature_dim)
                    feats[frame_idx[rows]] = out[rows]
                    valid[frame_idx[rows]] = ok[rows]
                    remaining[pos] -= int(rows.sum())
                    if remaining[pos] == 0:
                        commit(int(pos))
                report.n_frames_encoded += int(ok.sum())
                bar.advance(task, len(ok))
    if report.n_corrupt > MAX_LOGGED_ERRORS:
        log.warning("%d unreadable face crops in total", report.n_corrupt)
    report.seconds = time.perf_counter() - started
    return report


def _crop_loader(frames: CropFrames, batch_size: int, num_workers: int,
                 device: torch.device) -> torch.utils.data.DataLoader:
    """Batches of ``frames`` in order, decoded by ``num_workers`` processes with bounded prefetch."""
    return torch.utils.data.DataLoader(
        frames, batch_size=batch_size, shuffle=False, num_workers=num_workers, worker_init_fn=worker_init,
        pin_memory=device.type == "cuda", prefetch_factor=2 if num_workers else None, persistent_workers=False,
    )


def _note_read_errors(batch: dict[str, Any], failed: set[int], report: ExtractReport) -> None:
    """Count a batch's missing and unreadable crops; an unreadable crop fails its video (``failed``)."""
    report.n_missing += int(batch["missing"].sum())
    for pos, msg in zip(batch["job"].numpy(), batch["error"]):
        if msg:
            failed.add(int(pos))
            report.n_corrupt += 1
            if len(report.errors) < MAX_LOGGED_ERRORS:
                report.errors.append(msg)
                log.warning("unreadable face crop (its video fails): %s", msg)


def _buffer(buffers: dict[int, tuple[np.ndarray, np.ndarray]], pos: int, n_frames: int,
            feature_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The (features, feature_valid) arrays of video ``pos``, made on its first batch."""
    if pos not in buffers:
        buffers[pos] = (np.zeros((n_frames, feature_dim), FEATURE_DTYPE), np.zeros(n_frames, bool))
    return buffers[pos]


def extract_features(
    dataset: Any,
    frame_model: torch.nn.Module,
    out_dir: str | Path,
    *,
    checkpoint_path: str | Path | None = None,
    batch_size: int = 128,
    num_workers: int = 2,
    device: str = "auto",
    framing: str | None = "abaw112",
    progress: bool | None = None,
) -> ExtractReport:
    """Extract features of every video of an ABAW-layout ``dataset`` into the store at ``out_dir``.

    Resumable: videos already committed in ``out_dir`` are skipped; a store made by a
    different checkpoint is refused (``InputError``). ``framing`` is how the crops are
    framed (ABAW ``cropped_aligned``: ``abaw112``), so the encoder's preprocessing can convert.
    Videos with unreadable crops are not committed: after committing all the others the
    run raises :class:`ExtractIncomplete` (one line naming them); re-running retries them.
    """
    jobs = plan_videos(dataset)

    def run(writer: StoreWriter) -> ExtractReport:
        return extract_videos([job for job in jobs if not writer.is_done(job.video_id)], frame_model, writer,
                              batch_size=batch_size, num_workers=num_workers, device=device, framing=framing,
                              progress=progress)

    return extract_into_store(out_dir, frame_model, dataset, [job.video_id for job in jobs], run, checkpoint_path)


def extract_into_store(
    out_dir: str | Path,
    frame_model: torch.nn.Module,
    dataset: Any,
    planned: Sequence[str],
    run: Callable[[StoreWriter], ExtractReport],
    checkpoint_path: str | Path | None = None,
) -> ExtractReport:
    """What every extraction engine (crops or raw videos; this process or Ray) does around its work.

    Opens or resumes the store (:func:`open_store`), records the ``planned`` video ids (so an
    aborted run leaves a store known to be incomplete), calls ``run(writer)`` -- which extracts
    the videos not yet done and commits each one -- then counts the skipped videos, rebuilds
    the manifest once and raises :class:`ExtractIncomplete` when some videos failed.
    """
    writer = open_store(out_dir, frame_model, dataset, checkpoint_path)
    writer.set_planned(list(planned))
    n_done_before = sum(1 for video_id in planned if writer.is_done(video_id))
    report = run(writer)
    report.n_videos, report.n_skipped = len(planned), n_done_before
    writer.rebuild_manifest()
    return raise_if_failed(writer.root, report)
