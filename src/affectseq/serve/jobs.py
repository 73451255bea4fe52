"""Jobs of ``affectseq serve``: persisted on disk, run by a fixed pool of worker threads.

Layout under the data folder::

    jobs/<id>/job.json     the job record (written atomically on every status change)
    jobs/<id>/upload       the uploaded video (its name never comes from the client)
    jobs/<id>/out/         predict's per-video outputs (frames.csv, summary.json, ...)
    uploads/*.partial      uploads still arriving (cleared at start)

A job folder appears in one ``os.replace`` with its upload and record inside,
so no half-created job is ever listed. On restart, ``queued`` jobs are queued
again (their upload is complete) and ``running`` ones become ``failed`` with an
"interrupted" error: re-running them blindly could crash-loop a server on a
video that took it down, and the user can simply upload again.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from affectseq.errors import first_line
from affectseq.utils.atomic import write_json_atomic
from affectseq.utils.fsguard import real_dir

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
UPLOAD_FILE = "upload"
OUT_DIR = "out"
STATUSES = ("queued", "running", "done", "failed")
INTERRUPTED = "interrupted: the server stopped while this job was running; upload the video again"
# token_urlsafe(16) gives 22 characters; anything else is rejected before it can touch a path.
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")


def new_job_id() -> str:
    """An unguessable job id (128 random bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def valid_job_id(job_id: str) -> bool:
    """True for strings shaped like :func:`new_job_id`'s (the only ids ever joined to a path)."""
    return bool(_ID_RE.match(job_id))


def job_error(err: BaseException) -> str:
    """A failed job's ``error``: the exception's first line, or its class name when it has no message."""
    return first_line(err) or type(err).__name__


class JobCancelled(Exception):
    """Raised inside a running job when it was deleted."""


@dataclass
class Job:
    """One upload and its prediction; :meth:`public` is what the API returns."""

    id: str
    name: str                                   # the client's file name: display text only
    size_bytes: int
    options: dict[str, Any]
    created: float = field(default_factory=time.time)
    status: str = "queued"
    progress: float = 0.0
    stage: str = "queued"
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    video: dict[str, Any] = field(default_factory=dict)   # probed metadata (duration, fps, size, format)
    summary: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        """The JSON the API answers with."""
        return asdict(self)


class JobStore:
    """The jobs under ``root/jobs``: an in-memory index backed by one ``job.json`` per job."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.jobs_dir = self.root / "jobs"
        self.uploads_dir = self.root / "uploads"
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def open(self) -> list[str]:
        """Create the folders, drop stale partial uploads, load every job; return the ids to queue again."""
        # Links planted as these folders would send uploads and results elsewhere: refused (one line).
        real_dir(self.jobs_dir, "jobs folder")
        real_dir(self.uploads_dir, "uploads folder")
        shutil.rmtree(self.uploads_dir, ignore_errors=True)  # uploads cut short by the last shutdown
        real_dir(self.uploads_dir, "uploads folder")
        requeue = []
        for folder in sorted(self.jobs_dir.iterdir()):
            if folder.name.startswith(".") or not valid_job_id(folder.name):
                shutil.rmtree(folder, ignore_errors=True)  # a job folder never published, or not ours
                continue
            if not (folder / JOB_FILE).is_file():
                # Jobs are published with their record, so this is the rest of a deletion cut short.
                shutil.rmtree(folder, ignore_errors=True)
                continue
            try:
                job = Job(**json.loads((folder / JOB_FILE).read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError) as err:
                log.warning("%s: unreadable job record, skipped (%s)", folder, err)
                continue
            if job.status == "running":
                job.status, job.stage, job.error, job.finished = "failed", "failed", INTERRUPTED, time.time()
                self._write(job)
            elif job.status == "queued":
                requeue.append(job.id)
            self._jobs[job.id] = job
        requeue.sort(key=lambda i: self._jobs[i].created)
        return requeue

    def job_dir(self, job_id: str) -> Path:
        """The folder of a job (the id must be valid: see :func:`valid_job_id`)."""
        if not valid_job_id(job_id):
            raise KeyError(job_id)
        return self.jobs_dir / job_id

    def create(self, upload_path: Path, name: str, size: int, options: dict[str, Any],
               video: dict[str, Any], error: str | None = None) -> Job:
        """Publish a new job owning ``upload_path`` (moved in): ``queued``, or ``failed`` with ``error``."""
        job = Job(id=new_job_id(), name=name, size_bytes=size, options=options, video=video)
        if error is not None:
            job.status, job.stage, job.error, job.finished = "failed", "failed", error, time.time()
        staging = self.jobs_dir / f".{job.id}.tmp"
        staging.mkdir(parents=True)
        try:
            upload_path.replace(staging / UPLOAD_FILE)
            write_json_atomic(staging / JOB_FILE, job.public())
            staging.replace(self.jobs_dir / job.id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        with self._lock:
            self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        """All jobs, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)

    def update(self, job: Job, persist: bool = True, **changes: Any) -> None:
        """Change a job's fields; ``persist`` rewrites its record (status changes, not every progress tick)."""
        # Under the lock, so a record is never written into the folder of a job being deleted
        # (which would bring a folder back holding only job.json).
        with self._lock:
            for key, value in changes.items():
                setattr(job, key, value)
            if persist and job.id in self._jobs:
                self._write(job)

    def remove(self, job_id: str) -> Job | None:
        """Forget a job (its folder is deleted by :meth:`purge`)."""
        with self._lock:
            return self._jobs.pop(job_id, None)

    def purge(self, job_id: str) -> None:
        """Delete a job's folder: renamed first so a half-deleted job never looks like a job."""
        folder = self.job_dir(job_id)
        trash = self.jobs_dir / f".{job_id}.deleting"
        with self._lock:
            if not folder.exists():
                return
            folder.replace(trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _write(self, job: Job) -> None:
        folder = self.job_dir(job.id)
        if folder.is_dir():
            write_json_atomic(folder / JOB_FILE, job.public())


@dataclass
class RunRequest:
    """What a runner gets for one job: read ``video``, publish outputs to ``out_dir``, report progress."""

    job_id: str
    video: Path
    out_dir: Path
    name: str
    options: dict[str, Any]
    progress: Callable[[float, str], None]     # (fraction 0..1, stage text)
    cancelled: threading.Event


Runner = Callable[[RunRequest], dict[str, Any]]   # returns the summary (summary.json's content)


class JobQueue:
    """A FIFO of job ids served by ``workers`` threads: never more predictions at once than workers."""

    def __init__(self, store: JobStore, runner: Runner, workers: int = 1):
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.store = store
        self.runner = runner
        self.workers = workers
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, requeue: list[str] = ()) -> None:  # type: ignore[assignment]
        """Start the workers, with the jobs left queued by the last run first in line."""
        for job_id in requeue:
            self.submit(job_id)
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"affectseq-serve-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, job_id: str) -> None:
        """Queue a job (it runs when a worker is free)."""
        self._queue.put(job_id)

    def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop; True when it was running."""
        with self._lock:
            event = self._cancel.get(job_id)
        if event is not None:
            event.set()
        return event is not None

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the workers: running jobs are cancelled and recorded as interrupted."""
        with self._lock:
            running = list(self._cancel.values())
        for event in running:
            event.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            job = self.store.get(job_id)
            if job is None or job.status != "queued":  # deleted while waiting
                continue
            try:
                self._run(job)
            except Exception:  # a worker must outlive any job
                log.exception("job %s: unexpected failure", job_id)

    def _run(self, job: Job) -> None:
        event = threading.Event()
        with self._lock:
            self._cancel[job.id] = event
        self.store.update(job, status="running", stage="starting", progress=0.0, started=time.time())
        folder = self.store.job_dir(job.id)

        def progress(fraction: float, stage: str) -> None:
            if event.is_set():
                raise JobCancelled(job.id)
            self.store.update(job, persist=False, progress=round(min(max(fraction, 0.0), 1.0), 4), stage=stage)

        request = RunRequest(job.id, folder / UPLOAD_FILE, folder / OUT_DIR, job.name, dict(job.options),
                             progress, event)
        try:
            # A job queued again after a crash may have published some results: start clean.
            shutil.rmtree(request.out_dir, ignore_errors=True)
            summary = self.runner(request)
            if event.is_set():
                raise JobCancelled(job.id)
            self.store.update(job, status="done", stage="done", progress=1.0, summary=summary,
                              finished=time.time())
        except JobCancelled:
            self.store.update(job, status="failed", stage="failed", error=INTERRUPTED, finished=time.time())
        except Exception as err:
            log.debug("job %s failed", job.id, exc_info=True)
            self.store.update(job, status="failed", stage="failed", error=job_error(err), finished=time.time())
        finally:
            with self._lock:
                self._cancel.pop(job.id, None)
            if self.store.get(job.id) is None:  # deleted while it ran: its folder goes now
                self.store.purge(job.id)
