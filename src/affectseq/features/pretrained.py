"""Models shipped inside the package (``src/affectseq/weights/``), found offline by name.

``"default"`` is the expression model trained on FER2013 (see docs/model_card.md). The name
registry lives in :mod:`affectseq.features.shipped` (re-exported here); this module adds
:func:`export_shipped_model`, the maintainers' tool that (re)ships a trained model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from affectseq.features.shipped import (  # noqa: F401 (re-exported: the public names of shipped models)
    SHIPPED_MODELS, default_model_path, model_card, resolve_model_path, shipped_model_path, weights_dir,
)


def export_shipped_model(run_dir: str | os.PathLike[str], name: str = "default",
                         card: dict[str, Any] | None = None, dest_dir: str | os.PathLike[str] | None = None) -> Path:
    """Copy a run's ``checkpoint_best.safetensors`` into the weights folder as shipped model ``name``.

    Writes the JSON card beside it: the run's validation metrics (from the checkpoint),
    its test metrics (``test_metrics.json``, when the run finished) and ``card`` entries.
    Used by maintainers to (re)ship the default model; not part of normal use.
    """
    import shutil

    from affectseq.modelfile.frame import read_frame_model_header
    from affectseq.utils.atomic import atomic_path, write_json_atomic

    run = Path(run_dir)
    source = run / "checkpoint_best.safetensors"
    header = read_frame_model_header(source)
    target = Path(dest_dir or weights_dir()) / SHIPPED_MODELS[name]
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    test_file = run / "test_metrics.json"
    meta = header.get("meta", {})
    from affectseq.utils.hashing import sha256_file

    data = {
        "name": name,
        "file": target.name,
        "sha256": sha256_file(target),  # the card describes exactly these weights (tests/test_default_model_guard.py)
        "spec": header["encoder"],
        "tasks": header["tasks"],
        "expr_classes": header["expr_classes"],
        "selected_epoch": meta.get("epoch"),
        "val_metrics": meta.get("val_metrics"),
        "test_metrics": json.loads(test_file.read_text(encoding="utf-8")) if test_file.is_file() else None,
        "training_command": meta.get("command"),
        **(card or {}),
    }
    write_json_atomic(target.with_suffix(".json"), data)
    return target
