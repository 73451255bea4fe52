"""The ``affectseq serve`` ASGI app: the HTTP API (``/api``), the page (``/``) and its API docs (``/docs``).

Uploads stream to disk under the size limit (:mod:`.upload`), are probed like
``predict`` probes them, and become jobs (:mod:`.jobs`) that a fixed pool of
workers runs with ``affectseq.predict`` (:mod:`.runner`). File names from
clients are display text only; every path is built from a random job id and
fixed file names.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect

from affectseq import __version__
from affectseq.errors import InputError
from affectseq.predict.outputs import FRAMES_FILES, OVERLAY_FILE
from affectseq.predict.writers import output_writers
from affectseq.serve.jobs import OUT_DIR, UPLOAD_FILE, Job, JobQueue, JobStore, Runner, valid_job_id
from affectseq.serve.options import OptionError, form_schema, parse_options
from affectseq.serve.runner import client_error, media_type
from affectseq.serve.upload import FILE_FIELD, UploadError, receive_upload, storage_error

log = logging.getLogger(__name__)
STATIC_DIR = Path(str(resources.files("affectseq.serve") / "static"))


def result_files() -> dict[str, tuple[str, str]]:
    """Result files by URL name: (file in the job's out/ folder, media type), one per file of each output writer
    (``frames.parquet`` is made from the CSV on request instead: jobs write CSV)."""
    return {name: (name, mime) for writer in output_writers() for name, mime in writer.files.items()
            if name != FRAMES_FILES["parquet"]}


_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FILE_FIELD],
    "properties": {
        FILE_FIELD: {"type": "string", "format": "binary", "description": "the video file"},
        **form_schema(),
    }}}}}}


@dataclass(frozen=True)
class ServeConfig:
    """Server settings (the ``affectseq serve`` options)."""

    data_dir: Path
    max_upload_bytes: int = 2048 * 2**20
    jobs: int = 1
    model: str = "default"
    # Host names the server answers to (None: any). Bound to loopback, the CLI lists only loopback
    # names so a web page cannot reach the API through DNS rebinding.
    allowed_hosts: tuple[str, ...] | None = None
    max_live_sessions: int = 4  # camera tabs of the /live page served at once


def create_app(config: ServeConfig, runner: Runner | None = None) -> FastAPI:
    """The ASGI app; ``runner`` replaces the real predict runner (tests pass a fake)."""
    if runner is None:
        from affectseq.serve.runner import PredictRunner

        runner = PredictRunner(config.model)
    store = JobStore(config.data_dir)
    jobs = JobQueue(store, runner, workers=config.jobs)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        jobs.start(store.open())
        yield
        await anyio.to_thread.run_sync(jobs.stop)

    app = FastAPI(title="affectseq serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Upload a video, get its per-frame expressions (and valence/arousal). "
                              "Every job runs `affectseq predict` on the upload; results are its files.")
    app.state.store, app.state.queue, app.state.config = store, jobs, config
    app.middleware("http")(_same_origin_guard(config))
    # Routes in this order (the API docs list them so): page, uploads, jobs, results.
    _add_page_routes(app, config)
    _add_upload_routes(app, store, jobs, config)
    _add_job_routes(app, store, jobs)
    _add_result_routes(app, store)
    from affectseq.serve.live import mount_live  # the /live camera page

    mount_live(app, config, runner, STATIC_DIR, _host_name)
    return app


def _same_origin_guard(config: ServeConfig) -> Any:
    """The HTTP middleware refusing unknown Host names and cross-site writes."""
    async def same_origin(request: Request, call_next: Any) -> Response:
        host = request.headers.get("host", "")
        if config.allowed_hosts is not None and _host_name(host) not in config.allowed_hosts:
            return JSONResponse({"detail": f"unknown host {host!r}"}, status_code=400)
        origin = request.headers.get("origin")
        # Another site's page may POST a form here (no CORS preflight for that): refuse it.
        if request.method not in ("GET", "HEAD") and origin and urlsplit(origin).netloc != host:
            return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        return await call_next(request)

    return same_origin


def _job_or_404(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id) if valid_job_id(job_id) else None
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job


def _result_path(store: JobStore, job_id: str, name: str) -> Path:
    job = _job_or_404(store, job_id)
    if job.status != "done":
        raise HTTPException(409, f"job is {job.status}: results exist once it is done")
    path = store.job_dir(job.id) / OUT_DIR / name
    if not path.is_file():
        raise HTTPException(404, f"this job has no {name}"
                            + (" (upload with overlay=true)" if name == OVERLAY_FILE else ""))
    return path


def _add_page_routes(app: FastAPI, config: ServeConfig) -> None:
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/config", summary="Server settings the page needs")
    def get_config() -> dict[str, Any]:
        return {"version": __version__, "model": config.model, "workers": config.jobs,
                "max_upload_bytes": config.max_upload_bytes, "upload_field": FILE_FIELD}


def _add_upload_routes(app: FastAPI, store: JobStore, jobs: JobQueue, config: ServeConfig) -> None:
    async def publish(upload_path: Path, name: str, size: int, fields: dict[str, str]) -> JSONResponse:
        """Probe the upload like ``predict`` does and create its job (failed at once when not a video)."""
        try:
            options = parse_options(fields)
        except OptionError as err:
            upload_path.unlink(missing_ok=True)
            raise HTTPException(422, str(err)) from None
        video, error = await anyio.to_thread.run_sync(_probe, upload_path, name)
        try:
            job = await anyio.to_thread.run_sync(store.create, upload_path, name, size, options, video, error)
        except OSError as err:  # a full disk: one line for the client and the log, not a bare 500
            upload_path.unlink(missing_ok=True)
            failure = storage_error(err)
            log.error("upload %s not stored: %s", name, failure.message)
            return JSONResponse({"detail": failure.message}, status_code=failure.status)
        if error is None:
            jobs.submit(job.id)
        return JSONResponse(job.public(), status_code=201, headers={"Location": f"/api/jobs/{job.id}"})

    @app.post("/api/jobs", status_code=201, openapi_extra=_UPLOAD_BODY, summary="Upload a video: a new job",
              responses={201: {"description": "the job (status queued, or failed when not a video)"},
                         400: {"description": "malformed form or no video file"},
                         413: {"description": "over the upload limit"}, 422: {"description": "bad option"}})
    async def create_job(request: Request) -> Response:
        """Streams the ``video`` part to disk (stopping at the size limit), then probes and queues it."""
        try:
            upload = await receive_upload(request.headers.get("content-type", ""),
                                          request.headers.get("content-length"), request.stream(),
                                          store.uploads_dir, config.max_upload_bytes)
        except UploadError as err:
            if err.status >= 500:
                log.error("upload not stored: %s", err.message)
            # Close the connection: the rest of an over-limit body is not read.
            return JSONResponse({"detail": err.message}, status_code=err.status, headers={"Connection": "close"})
        except ClientDisconnect:
            log.info("client disconnected mid-upload; nothing kept")
            return Response(status_code=400)
        return await publish(upload.path, upload.filename, upload.size, upload.fields)

    @app.post("/api/jobs/sample", status_code=201, summary="A job on the bundled sample clip",
              responses={201: {"description": "the job"}, 422: {"description": "bad option"}})
    async def create_sample_job(request: Request) -> Response:
        """Same optional form fields as ``POST /api/jobs``, without a file."""
        from affectseq.predict.sample import sample_video_path

        form = await request.form(max_files=0, max_fields=16)
        fields = {k: str(v) for k, v in form.items()}
        sample = sample_video_path()
        store.uploads_dir.mkdir(parents=True, exist_ok=True)
        copy = store.uploads_dir / f"sample-{secrets.token_hex(8)}.partial"
        try:
            await anyio.to_thread.run_sync(shutil.copyfile, sample, copy)
        except OSError as err:
            copy.unlink(missing_ok=True)
            failure = storage_error(err)
            return JSONResponse({"detail": failure.message}, status_code=failure.status)
        return await publish(copy, sample.name, copy.stat().st_size, fields)


def _add_job_routes(app: FastAPI, store: JobStore, jobs: JobQueue) -> None:
    @app.get("/api/jobs", summary="All jobs, newest first (without summaries)")
    def list_jobs() -> dict[str, Any]:
        return {"jobs": [{**job.public(), "summary": None} for job in store.list()]}

    @app.get("/api/jobs/{job_id}", summary="One job: status, progress 0..1, error, summary",
             responses={404: {"description": "unknown job"}})
    def get_job(job_id: str) -> dict[str, Any]:
        return _job_or_404(store, job_id).public()

    @app.delete("/api/jobs/{job_id}", status_code=204, summary="Delete a job and its files (stops it if running)",
                responses={404: {"description": "unknown job"}})
    def delete_job(job_id: str) -> Response:
        _job_or_404(store, job_id)
        store.remove(job_id)
        if not jobs.cancel(job_id):  # a running job's worker deletes its folder when it stops
            store.purge(job_id)
        return Response(status_code=204)

    @app.get("/api/jobs/{job_id}/video", summary="The uploaded video (supports Range requests)",
             responses={404: {"description": "unknown job"}})
    def get_video(job_id: str) -> FileResponse:
        job = _job_or_404(store, job_id)
        path = store.job_dir(job.id) / UPLOAD_FILE
        return FileResponse(path, media_type=media_type(job.video, path), filename=job.name,
                            content_disposition_type="inline")


def _add_result_routes(app: FastAPI, store: JobStore) -> None:
    @app.get("/api/jobs/{job_id}/frames.parquet", summary="The frames table as Parquet (made on first request)",
             responses={404: {"description": "unknown job"}, 409: {"description": "job not done"},
                        501: {"description": "pyarrow missing"}})
    def get_parquet(job_id: str) -> FileResponse:
        csv = _result_path(store, job_id, FRAMES_FILES["csv"])
        target = csv.with_name(FRAMES_FILES["parquet"])
        if not target.is_file():
            from affectseq.errors import ConfigError
            from affectseq.predict.outputs import read_frames_table, write_frames_table

            try:
                write_frames_table(read_frames_table(csv), csv.parent, "parquet")
            except ConfigError as err:
                raise HTTPException(501, str(err)) from None
        return FileResponse(target, media_type="application/vnd.apache.parquet",
                            filename=f"{Path(_job_or_404(store, job_id).name).stem}_frames.parquet")

    @app.get("/api/jobs/{job_id}/series.json", summary="Chart data: per-face probability (and VA) series")
    def get_series(job_id: str, max_points: int = 5000) -> dict[str, Any]:
        from affectseq.serve.series import frames_series

        return frames_series(_result_path(store, job_id, FRAMES_FILES["csv"]), max(100, min(max_points, 100_000)))

    for url_name, (file_name, mime) in result_files().items():
        _add_result_file_route(app, store, url_name, file_name, mime)


def _add_result_file_route(app: FastAPI, store: JobStore, url_name: str, file_name: str, mime: str) -> None:
    inline = mime.startswith(("video/", "image/"))

    def get_result(job_id: str) -> FileResponse:
        stem = Path(_job_or_404(store, job_id).name).stem
        return FileResponse(_result_path(store, job_id, file_name), media_type=mime, filename=f"{stem}_{url_name}",
                            content_disposition_type="inline" if inline else "attachment")

    app.get(f"/api/jobs/{{job_id}}/{url_name}", summary=f"The job's {file_name}",
            responses={404: {"description": "unknown job or file"}, 409: {"description": "job not done"}},
            name=f"get_{url_name}")(get_result)


def _host_name(host: str) -> str:
    """The name part of a Host header: ``localhost:8765`` -> ``localhost``, ``[::1]:8765`` -> ``::1``."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _probe(path: Path, name: str) -> tuple[dict[str, Any], str | None]:
    """``(video metadata, None)``, or ``({}, one-line error)`` naming the client's file as the CLI would."""
    import dataclasses

    from affectseq.io.video import probe_video

    try:
        info = probe_video(path)
    except InputError as err:
        return {}, client_error(err, name)
    except Exception as err:  # a decoder crash on hostile input is still just a bad upload
        return {}, f"{name}: not a readable video ({type(err).__name__})"
    meta = dataclasses.asdict(info)
    meta.pop("path", None)
    return meta, None
