"""Does temporal context help on the synthetic benchmark? A pixel-level check with a cheap frame classifier.

Generates a synthetic set (default config: 20 x 300; or reads ``--data DIR``) with the ABAW
adapter, trains a per-frame classifier on the Train_Set crops (HOG of 64x64 grey crops ->
class-balanced logistic regression) and a per-frame VA ridge regressor, then scores
Validation_Set frames two ways: each frame alone, and the same per-frame outputs averaged over
a centred window of the person's neighbouring crops (a stand-in for what a temporal model can
integrate). The gap is what the benchmark is designed to have: single frames are ambiguous,
windows much less so.

    python benchmarks/synth_temporal.py                      # generate 20 x 300, windows 11 and 25
    python benchmarks/synth_temporal.py --data /tmp/synth    # an existing synthetic set
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np


_HOG = cv2.HOGDescriptor((64, 64), (16, 16), (8, 8), (8, 8), 9)


def _load(dataset, task: str, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HOG features (N, 1764), labels, and a per-row video number, for annotated frames with a crop."""
    features, labels, video_ids = [], [], []
    for number, video in enumerate(dataset.videos(task, split)):
        keep = np.flatnonzero(video.has_face & video.annotated)
        for frame_idx in keep:
            grey = cv2.imread(str(video.crop_path(int(frame_idx))), cv2.IMREAD_GRAYSCALE)
            features.append(_HOG.compute(cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA)).ravel())
        labels.append(video.labels[keep])
        video_ids.append(np.full(len(keep), number))
    return np.asarray(features, np.float32), np.concatenate(labels), np.concatenate(video_ids)


def _window_mean(values: np.ndarray, video_ids: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of per-frame outputs within each video (over its crops)."""
    out = np.empty_like(values)
    half = window // 2
    for vid in np.unique(video_ids):
        rows = np.flatnonzero(video_ids == vid)
        cum = np.cumsum(np.vstack([np.zeros((1, values.shape[1])), values[rows]]), axis=0)
        idx = np.arange(len(rows))
        lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, len(rows))
        out[rows] = (cum[hi] - cum[lo]) / (hi - lo)[:, None]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--windows", type=int, nargs="+", default=[11, 25], help="frames averaged (centred)")
    parser.add_argument("--data", type=Path, default=None, help="existing synthetic set (skip generation)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from affectseq import metrics
    from affectseq.data.abaw import AbawDataset
    from affectseq.data.synth import SynthConfig, generate

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp) / "synth"
            config = SynthConfig(n_videos=args.videos, n_frames=args.frames, seed=args.seed, write_videos=False)
            generate(root, config, show_progress=False)
        dataset = AbawDataset(root)
        x_tr, y_tr, _ = _load(dataset, "EXPR", "Train_Set")
        x_va, y_va, v_va = _load(dataset, "EXPR", "Validation_Set")
        xv_tr, va_tr, _ = _load(dataset, "VA", "Train_Set")
        xv_va, va_va, vv_va = _load(dataset, "VA", "Validation_Set")

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=300, class_weight="balanced"))
    clf.fit(x_tr, y_tr)
    proba = np.zeros((len(x_va), 8))
    proba[:, clf.classes_] = clf.predict_proba(x_va)
    reg = make_pipeline(StandardScaler(), Ridge(alpha=1000.0)).fit(xv_tr, va_tr)
    va_pred = np.clip(reg.predict(xv_va), -1, 1)

    print(f"EXPR: {len(x_tr)} train / {len(x_va)} validation frames; VA: {len(xv_tr)} / {len(xv_va)}")
    print(f"{'per-frame outputs':28s}{'accuracy':>10s}{'macro F1':>10s}{'VA CCC':>9s}")
    for window in [1, *args.windows]:
        p = proba if window == 1 else _window_mean(proba, v_va, window)
        v = va_pred if window == 1 else _window_mean(va_pred, vv_va, window)
        name = "single frame" if window == 1 else f"mean over {window} frames"
        pred = p.argmax(1)
        print(f"{name:28s}{metrics.accuracy(y_va, pred):10.3f}{metrics.macro_f1(y_va, pred, 8):10.3f}"
              f"{metrics.mean_ccc(va_va, v):9.3f}")


if __name__ == "__main__":
    main()
