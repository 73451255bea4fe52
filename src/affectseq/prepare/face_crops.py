"""``affectseq data faces DATASET --out DIR``: an ABAW tree of face crops from a dataset's raw videos.

Input: any video layout of the registry (:mod:`affectseq.data.registry`): a ``video_csv``
dataset (``<name>.mp4`` + ``<name>.csv``), a clip dataset (``clip_folders``, ``clip_list``,
DFEW, ...), or an ABAW tree with raw videos. Output, readable by :class:`~affectseq.data.abaw.AbawDataset` and so by
``data inspect``, ``train frames``, ``extract`` and ``experiment paper``::

    DIR/cropped_aligned/<video_id>/<frame_idx + 1:05d>.jpg     aligned 112-px crops (ABAW numbering)
    DIR/<task folder>/<split>/<video_id>.txt                    ABAW 6 files written from the CSVs,
                                                                or the ABAW tree's own files copied
    DIR/cropped_aligned/<video_id>/.affectseq-crops.json        its raw video and frame rate (read as
                                                                ``AnnotatedVideo.fps``, so stores record it)
    DIR/.affectseq-faces/<video>.json                           per raw video, written last: "finished"
    DIR/.affectseq-dataset.json                                 a clip dataset's label level and classes

One raw video is the unit of work: its persons' crop folders are built under a temporary
folder and published (:mod:`affectseq.utils.publish`), its annotation files written
atomically, and its marker last; a rerun skips videos whose marker records the same
options. A video that fails (unreadable, truncated) is reported in one line and the others
go on. ``DIR`` holds a lock (:mod:`affectseq.utils.lock`) while a run writes it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from affectseq.data.abaw_layout import DATASET_DECLARATION
from affectseq.data.crop_export import CROP_ROOT, CropJob, plan_crop_jobs
from affectseq.errors import InputError
from affectseq.predict.batch import check_output_root, describe_failure, output_session
from affectseq.prepare.video_crops import OWNER_FILE, CropOptions, crop_job
from affectseq.utils.atomic import atomic_path, write_json_atomic, write_text_atomic
from affectseq.utils.fsguard import real_dir
from affectseq.utils.naming import safe_name
from affectseq.utils.progress import make_progress
from affectseq.utils.publish import partial_dir, publish_dir
from affectseq.utils.threads import torch_threads

log = logging.getLogger(__name__)
MARKER_DIR = ".affectseq-faces"
# Runs unfinished jobs somewhere (Ray tasks): ``(job, crops written | one-line failure)`` as each ends.
CropRunner = Callable[[list[CropJob], Path, CropOptions], Iterable[tuple[CropJob, int | str]]]


@dataclass
class CropReport:
    """What a run did: videos written, skipped (finished earlier) and failed (one line each)."""

    out: Path
    layout: str
    written: int = 0
    skipped: int = 0
    crops: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every video is done, 1 when any failed."""
        return 1 if self.failures else 0


def marker_path(out: Path, job: CropJob) -> Path:
    """The finished marker of ``job`` (any file name works: the key is made safe)."""
    return out / MARKER_DIR / f"{safe_name(job.key)}.json"


def is_finished(out: Path, job: CropJob, options: CropOptions) -> bool:
    """The job's marker exists and records the same persons and options."""
    try:
        marker = json.loads(marker_path(out, job).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker.get("options") == options.fingerprint() and marker.get("video_ids") == [
        p.video_id for p in job.persons]


def export_face_crops(dataset: str | os.PathLike[str], out: str | os.PathLike[str],
                      options: CropOptions = CropOptions(), workers: int = 1,
                      progress: bool | None = None, runner: CropRunner | None = None,
                      layout: str | None = None, layout_options: dict[str, Any] | None = None) -> CropReport:
    """Crop the faces of every raw video of ``dataset`` into the ABAW tree ``out`` (see module docstring).

    ``runner`` runs the unfinished videos elsewhere (``affectseq.scale.ray_engine.crop_with_ray``);
    by default this process, or ``workers`` processes. ``layout``/``layout_options``: as
    :func:`affectseq.data.registry.open_dataset` (``--layout``, ``--fold``, ``--fps``).
    """
    root, out = Path(dataset), Path(out)
    _check_separate(root, out)
    plan = plan_crop_jobs(root, layout, **(layout_options or {}))
    jobs = plan.jobs
    report = CropReport(out, plan.layout, notes=plan.notes)
    check_output_root(out)
    with output_session(out, purpose="data faces"):
        if plan.declaration:
            write_json_atomic(out / DATASET_DECLARATION, plan.declaration)
        todo = [j for j in jobs if not is_finished(out, j, options)]
        report.skipped = len(jobs) - len(todo)
        real_dir(out / CROP_ROOT, "crop folder")  # a link planted there would take our writes elsewhere
        real_dir(out / MARKER_DIR, "marker folder")
        with make_progress(disable=None if progress is None else not progress) as bar:
            task = bar.add_task("face crops", total=len(todo))
            outcomes = runner(todo, out, options) if runner is not None else _run(todo, out, options, workers)
            for job, outcome in outcomes:
                if isinstance(outcome, str):
                    report.failures.append(outcome)
                else:
                    report.written += 1
                    report.crops += outcome
                bar.advance(task)
    return report


def has_raw_videos_only(root: str | os.PathLike[str], layout: str | None = None, **options: Any) -> bool:
    """True for a dataset whose faces must come from its videos: a video layout without face crops
    (``video_csv``, clip datasets, ABAW without ``cropped_aligned``...); the registry decides."""
    import inspect

    from affectseq.data.registry import dataset_has_crops, detect_layout, get_layout

    path = Path(root)
    if not path.exists():
        return False
    chosen = get_layout(layout) if layout else detect_layout(path)[0]
    if chosen.kind != "videos":
        return False
    if chosen.name == "abaw":  # cheap: no annotation file is parsed to know whether crops exist
        from affectseq.data.abaw_layout import scan_abaw_root

        return not scan_abaw_root(path).crop_roots
    opener = chosen.opener()
    static = inspect.getattr_static(opener, "has_crops", None) if isinstance(opener, type) else None
    if isinstance(static, bool):  # a class that always has (or never has) crops: no need to read every clip
        return not static
    return not dataset_has_crops(chosen.load(path, **options))


def default_crops_dir(dataset: str | os.PathLike[str], layout_options: dict[str, Any] | None = None) -> Path:
    """Where ``train frames`` keeps the face crops of a raw-video dataset: ``<dataset>-faces`` beside it
    (``-faces-fold2`` for fold 2 of a benchmark with folds: each fold's splits differ)."""
    root = Path(dataset).resolve()
    fold = (layout_options or {}).get("fold")
    return root.with_name(f"{root.stem if root.is_file() else root.name}-faces" + (f"-fold{fold}" if fold else ""))


def crops_for_training(dataset: str | os.PathLike[str], options: CropOptions = CropOptions(),
                       workers: int = 1, layout: str | None = None,
                       layout_options: dict[str, Any] | None = None) -> tuple[Path, str]:
    """``(data to train on, what was done)``: a raw-video dataset's crop tree, made or reused; others as given.

    The crops go to :func:`default_crops_dir`; videos cropped earlier with the same options are
    reused (``data faces`` resumes), so a second training run on the same videos crops nothing.
    Raises :class:`~affectseq.errors.InputError` when a video could not be cropped.
    """
    layout_options = {k: v for k, v in (layout_options or {}).items() if v is not None}
    if not has_raw_videos_only(dataset, layout, **layout_options):
        return Path(dataset), ""
    out = default_crops_dir(dataset, layout_options)
    report = export_face_crops(dataset, out, options, workers=workers, progress=False, layout=layout,
                               layout_options=layout_options)
    if report.failures:
        raise InputError(dataset, f"{len(report.failures)} videos could not be cropped (first: {report.failures[0]})")
    if report.written == 0:
        return out, (f"{dataset}: raw videos; reusing the face crops in {out} ({report.skipped} videos cropped "
                     "earlier by data faces)")
    return out, (f"{dataset}: raw videos; ran the face stage (data faces) into {out}: {report.written} videos "
                 f"cropped ({report.crops} crops), {report.skipped} reused")


def _check_separate(root: Path, out: Path) -> None:
    """DIR must not lie inside the dataset: its annotation folders would join the dataset's own tree."""
    if not root.exists():
        raise InputError(root, "dataset not found")
    inside = out.resolve() == root.resolve() or root.resolve() in out.resolve().parents
    if inside:
        raise InputError(out, f"output folder inside the dataset {root}: choose a folder outside it")


def _run(jobs: list[CropJob], out: Path, options: CropOptions, workers: int) -> Iterator[tuple[CropJob, int | str]]:
    """``(job, crops written | one-line failure)`` per job as they finish; ``workers`` processes when > 1."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield job, crop_video(job, out, options)
        return
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(crop_video, job, out, options): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                yield job, future.result()
            except Exception as err:  # noqa: BLE001 -- a worker that died (killed, out of memory)
                yield job, describe_failure(job.video, err)


def crop_video(job: CropJob, out: Path, options: CropOptions) -> int | str:
    """Crop and publish one raw video, as every engine runs it: the crops written, or the failure as one line.

    Returned, not raised, so one bad video never stops the others, and as text because not
    every exception survives pickling. Runs on one intra-op torch thread, as predict's face
    stage does (engines parallelise over videos); the caller's setting is restored.
    """
    try:
        with torch_threads(1):
            return crop_and_publish(job, out, options)
    except Exception as err:  # noqa: BLE001 -- reported as that video's one-line failure
        log.debug("data faces failed on %s", job.video, exc_info=err)
        return describe_failure(job.video, err)


def crop_and_publish(job: CropJob, out: Path, options: CropOptions) -> int:
    """Crop ``job`` under a temporary folder, publish its crop folders and annotations, marker last."""
    from affectseq.io.video import probe_video

    # What extraction from the raw video records (features.video_fps); a folder of frames has the --fps given.
    fps = job.fps or probe_video(job.video).fps or None
    with partial_dir(out) as work:
        counts = crop_job(job, work, options)
        for person in job.persons:
            folder = work / person.video_id
            write_json_atomic(folder / OWNER_FILE, {"video": str(job.video), "video_id": person.video_id, "fps": fps})
            # A redo replaces our crops and manifest only: a user's own files in the folder stay.
            publish_dir(folder, out / CROP_ROOT / person.video_id, _is_ours, owned=_our_files, last=OWNER_FILE)
        shutil.rmtree(work, ignore_errors=True)
    for person in job.persons:
        for rel, content in person.annotations.items():
            _write_annotation(out / rel, content, out)
    write_json_atomic(marker_path(out, job), {
        "video": str(job.video), "video_ids": [p.video_id for p in job.persons],
        "options": options.fingerprint(), "crops": counts,
    })
    return sum(counts.values())


def _is_ours(folder: Path) -> bool:
    return (folder / OWNER_FILE).is_file()


def _our_files(folder: Path) -> set[str]:
    """What a crop run wrote into ``folder``: its manifest and crops named as ABAW numbers them (00001.jpg)."""
    return {p.name for p in folder.iterdir()
            if p.name == OWNER_FILE or (len(p.name) >= 9 and p.name.endswith(".jpg") and p.name[:-4].isdigit())}


def _write_annotation(target: Path, content: str | Path, out: Path | None = None) -> None:
    real_dir(target.parent, "annotation folder", root=out)
    if isinstance(content, Path):
        with atomic_path(target) as tmp:
            shutil.copyfile(content, tmp)
    else:
        write_text_atomic(target, content)
