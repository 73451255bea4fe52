"""Reference metrics of a small frame run and a small sequence run, for ``tests/test_fit_reference.py``.

Written once with the code *before* the single training engine (``affectseq.training.fit``)
replaced the two loops, so the test proves the engine trains exactly as they did::

    PYTHONPATH=/tmp/baseline/src OMP_NUM_THREADS=1 python tests/data/make_fit_reference.py \
        --baseline-commit de4940c

(``/tmp/baseline`` was a checkout of that commit.) Both runs use settings on which the
old loops agreed (device cpu, epochs below either early-stopping patience), and only the
public entry points ``train_frames``/``train_sequence``, so the same functions run on
today's code in the test. Timing columns (``seconds``, ``train_images_per_sec``) are
left out: they are not deterministic.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

OUT = Path(__file__).with_name("fit_reference.json")
TIMING = ("seconds", "train_images_per_sec")

# FER2013 (../shared): 256 training, 128 validation, 64 test images, default augmentation, 2 epochs.
FRAME_OVERRIDES = {
    "task": "expr", "encoder": {"name": "resnet18", "input_size": 48}, "epochs": 2, "batch_size": 32,
    "lr": 0.001, "limit_train": 256, "limit_val": 128, "limit_test": 64, "threads": 1, "seed": 3, "device": "cpu",
}
# A random feature store: 10 videos x 200 frames of 16-d features, EXPR + VA labels, 3 epochs multi-task.
STORE = {"n_rows": 2000, "feature_dim": 16, "video_frames": 200, "seed": 1}
SEQUENCE_OVERRIDES = {
    "task": "multi", "window": 10, "model": {"hidden_sizes": [16]}, "epochs": 3, "batch_size": 32, "lr": 0.01,
    "max_windows_per_epoch": 256, "max_val_windows": 200, "patience": 5, "device": "cpu", "seed": 2,
}


def _rows(history: list[dict[str, Any]]) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in row.items() if k not in TIMING} for row in history]


def run_frames(fer2013_path: Path, run_dir: Path) -> dict[str, Any]:
    """The small frame run: per-epoch history, best epoch and its validation score, test metrics."""
    import pandas as pd

    from affectseq.config import load_config
    from affectseq.training.frames import FrameTrainConfig, train_frames

    config = load_config(FrameTrainConfig, overrides=FRAME_OVERRIDES)
    summary = train_frames(fer2013_path, config, run_dir)
    history = pd.read_csv(run_dir / "history.csv").to_dict("records")
    return {"history": _rows(history), "best_epoch": summary["best_epoch"],
            "test_metrics": {k: float(v) for k, v in summary["test_metrics"].items()}}


def run_sequence(work_dir: Path) -> dict[str, Any]:
    """The small sequence run: per-epoch history, best epoch and best selection score."""
    from affectseq.config import load_config
    from affectseq.features.store_writer import write_random_store
    from affectseq.training.sequence import SequenceTrainConfig, train_sequence

    store = write_random_store(work_dir / "store", **STORE)
    config = load_config(SequenceTrainConfig, overrides=SEQUENCE_OVERRIDES)
    result = train_sequence(store, work_dir / "run", config, progress=False)
    return {"history": _rows(result.history), "best_epoch": result.best_epoch, "best_score": float(result.best_score)}


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-commit", required=True)
    parser.add_argument("--fer2013", default=str(Path(__file__).resolve().parents[2].parent / "shared" / "data"
                                                 / "fer2013.npz"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # a script, not library code: one thread, as the test runs
    with tempfile.TemporaryDirectory() as tmp:
        reference = {"baseline_commit": args.baseline_commit,
                     "command": "PYTHONPATH=/tmp/baseline/src OMP_NUM_THREADS=1 python " + " ".join(sys.argv),
                     "torch": torch.__version__,
                     "frames": run_frames(Path(args.fer2013), Path(tmp) / "frames"),
                     "sequence": run_sequence(Path(tmp))}
    OUT.write_text(json.dumps(reference, indent=1) + "\n")
    print(json.dumps(reference, indent=1))


if __name__ == "__main__":
    main()
