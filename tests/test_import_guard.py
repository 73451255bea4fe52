"""What a process imports: ``import affectseq`` and ``--help`` stay light, and a default ``predict`` run
(ONNX Runtime: detector and frame model) imports no torch; ``--backend torch`` still runs on torch.

Checked in fresh subprocesses through ``sys.modules``, so nothing this test process imported counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "torchvision", "timm", "matplotlib", "pandas")


def _modules_after(code: str, tmp_path: Path) -> dict[str, bool]:
    """Which of HEAVY are in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint('MODULES=' + json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))  # an empty export cache: nothing pre-made
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES=")][-1]
    return json.loads(line.removeprefix("MODULES="))


def test_import_affectseq_is_light(tmp_path: Path) -> None:
    loaded = _modules_after("import affectseq; affectseq.__version__; dir(affectseq)", tmp_path)
    assert not any(loaded.values()), loaded


def test_predict_help_is_light(tmp_path: Path) -> None:
    code = ("import contextlib, io\nfrom affectseq.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['predict', '--help'])\n    except SystemExit:\n        pass")
    loaded = _modules_after(code, tmp_path)
    assert not any(loaded.values()), loaded


def test_default_predict_run_imports_no_torch(tmp_path: Path, clips_dir: Path) -> None:
    """The default path: shipped ONNX files for MTCNN and the default model, no export, no torch."""
    out = tmp_path / "out"
    code = (f"from affectseq.cli import main\n"
            f"assert main(['predict', {str(clips_dir / 'single_face.mp4')!r}, '-o', {str(out)!r}]) == 0")
    loaded = _modules_after(code, tmp_path)
    assert not loaded["torch"] and not loaded["torchvision"] and not loaded["timm"], loaded
    summary = json.loads((out / "single_face" / "summary.json").read_text())
    assert summary["model"]["backend"] == "onnx"
    assert (out / "single_face" / "frames.csv").is_file()


def test_serve_and_live_load_the_default_model_without_torch(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    code = ("from affectseq.serve.runner import PredictRunner\n"
            "import affectseq.serve.app, affectseq.predict.live_session\n"
            "assert PredictRunner().bundle().info.extra['backend'] == 'onnx'\n"
            "from affectseq.faces.stream import make_tracker\n"
            "assert make_tracker().detector.backend == 'onnx'")
    loaded = _modules_after(code, tmp_path)
    assert not loaded["torch"] and not loaded["torchvision"], loaded


@pytest.mark.slow
def test_torch_backend_still_runs_on_torch(tmp_path: Path, clips_dir: Path) -> None:
    """The fallback: ``--backend torch`` runs the detector and the model on torch."""
    out = tmp_path / "out"
    code = (f"from affectseq.cli import main\n"
            f"assert main(['predict', {str(clips_dir / 'single_face.mp4')!r}, '-o', {str(out)!r}, "
            f"'--backend', 'torch', '--device', 'cpu']) == 0\n"
            "import sys; assert 'affectseq.faces.mtcnn_nets' in sys.modules")
    loaded = _modules_after(code, tmp_path)
    assert loaded["torch"]
    assert json.loads((out / "single_face" / "summary.json").read_text())["model"]["backend"] == "torch"


def test_predict_worker_process_starts_without_torch(tmp_path: Path) -> None:
    """``--workers N`` spawns processes that run the default model on ONNX Runtime: their start-up (the pool
    initializer) must not import torch (it did, to set a thread count), and torch must still get that count
    when a torch stage imports it later."""
    code = ("import os, signal\nfrom affectseq.scale.predict_shards import _init_process\n"
            "_init_process(3, None)\nsignal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
            "assert os.environ['OMP_NUM_THREADS'] == '3'")
    loaded = _modules_after(code, tmp_path)
    assert not loaded["torch"], loaded


def test_the_live_api_function_imports_no_pandas(tmp_path: Path) -> None:
    """``affectseq.live`` yields dicts: reaching it must not import pandas (``predict_video``'s DataFrame)."""
    loaded = _modules_after("import affectseq; affectseq.live", tmp_path)
    assert not loaded["pandas"] and not loaded["torch"], loaded
