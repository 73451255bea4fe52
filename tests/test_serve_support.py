"""Shared pieces of the ``affectseq serve`` tests (no tests here): fake predict, app fixtures, upload helpers.

The fakes replace ``affectseq.predict.batch.predict_one`` and ``load_model`` so
the API, queue and runner plumbing run fast; the real predict runs in
``test_serve_real.py`` and the browser test.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra: pip install -e '.[serve]'")

from fastapi.testclient import TestClient  # noqa: E402

from affectseq.labels import EXPR_CLASSES_7  # noqa: E402
from affectseq.serve.app import ServeConfig, create_app  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample.mp4"


class FakePredict:
    """Stands in for ``predict_one``: writes small but well-formed outputs after ``delay`` seconds.

    Counts how many calls run at the same time (``max_running``), the queue's promise.
    """

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.running = 0
        self.max_running = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, video: Path, out_dir: Path, bundle: Any, options: Any, output: Any,
                 face_source_factory: Any = None, aligner: Any = None, on_frame: Any = None) -> Any:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.max_running = max(self.max_running, self.running)
        try:
            time.sleep(self.delay)
            out_dir.mkdir(parents=True)
            header = ["frame_idx", "time_sec", "face_id", "x1", "y1", "x2", "y2", "det_score"]
            header += [f"prob_{c.lower()}" for c in EXPR_CLASSES_7] + ["label"]
            rows = [",".join(header)]
            for i in range(4):
                probs = [0.1] * 7
                probs[i % 7] = 0.4
                rows.append(",".join(map(str, [i, i / 2, 0, 1, 2, 3, 4, 0.9, *probs, EXPR_CLASSES_7[i % 7]])))
            rows.append(",".join(["4", "2.0"] + [""] * (len(header) - 2)))  # a frame without a face
            (out_dir / "frames.csv").write_text("\n".join(rows) + "\n")
            (out_dir / "timeline.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
            if output.overlay:
                (out_dir / "overlay.mp4").write_bytes(Path(video).read_bytes())
            summary = {"video": {"path": str(video)}, "frames_processed": 5, "frames_with_face": 4,
                       "dominant_expression": "Neutral", "detect_every": options.detect_every}
            (out_dir / "summary.json").write_text(json.dumps(summary))
            return SimpleNamespace(summary=summary)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def fake_predict(monkeypatch: pytest.MonkeyPatch) -> FakePredict:
    """Patch predict (and model loading) with a :class:`FakePredict`; the runner itself is real."""
    fake = FakePredict()
    monkeypatch.setattr("affectseq.predict.batch.predict_one", fake)
    monkeypatch.setattr("affectseq.predict.model.load_model", lambda *a, **k: SimpleNamespace(info=None))
    return fake


@contextmanager
def serve_client(data_dir: Path, **config: Any) -> Iterator[TestClient]:
    """A TestClient over a fresh app on ``data_dir`` (startup and shutdown run)."""
    runner = config.pop("runner", None)
    app = create_app(ServeConfig(data_dir=data_dir, **config), runner)
    with TestClient(app) as client:
        client.app_state = app.state  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def client(tmp_path: Path, fake_predict: FakePredict) -> Iterator[TestClient]:
    with serve_client(tmp_path / "data") as c:
        yield c


def upload(client: TestClient, path: Path | None = None, name: str = "clip.mp4", data: bytes | None = None,
           **fields: str) -> Any:
    """POST a file (``path`` or raw ``data``) as the ``video`` field, with optional form fields."""
    content = data if data is not None else Path(path or SAMPLE).read_bytes()
    return client.post("/api/jobs", files={"video": (name, content, "application/octet-stream")}, data=fields)


def wait_for(client: TestClient, job_id: str, statuses: tuple[str, ...] = ("done", "failed"),
             timeout: float = 60) -> dict[str, Any]:
    """Poll a job until its status is one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, f"job stuck: {job}"
        time.sleep(0.05)
