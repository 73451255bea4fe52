"""Clip-level scores: one prediction per labelled clip, reported as UAR and WAR.

Clip benchmarks (DFEW, FERV39k, MAFW, AFEW...) score one label per clip and rank by
**UAR** (unweighted average recall: the mean of the per-class recalls) and **WAR**
(weighted average recall: accuracy over clips). Every model gets the same treatment:

* a clip-level sequence model (``train sequence`` on a clip store) predicts one row per
  clip already;
* a frame model (``evaluate-model`` on a clip dataset, or a per-frame sequence model on
  clip data) predicts frames; its clip score is the **mean of its class probabilities
  over the clip's rows** (the frames with a face), and the clip's label is the majority of
  its rows' labels (all equal in a clip dataset).

So "CNN alone vs CNN + GRU", the paper's question, is answered on the same clips with the
same metrics. Metrics come from :mod:`affectseq.metrics` (``uar``, ``war``,
``confusion_matrix``, ``per_class_scores``, ``bootstrap_ci``: resampling clips, which are
independent items, unlike the frames of one video).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from affectseq import metrics as M
from affectseq.evaluation.predictions import Predictions

DEFAULT_CLIP_BOOTSTRAP = 1000  # clip-level CIs are cheap (thousands of clips), so they are always given


def clip_predictions(preds: Predictions) -> Predictions:
    """One row per clip (``video_id``), in first-seen order: mean probabilities, majority label.

    Rows without a prediction (NaN probabilities) do not count; a clip with no such row
    keeps NaN probabilities (scored as class 0 by argmax would be wrong, so it is dropped
    and counted by the caller as ``n_clips_without_face``). Predictions already at one row
    per clip are returned unchanged.
    """
    if preds.expr_true is None:
        raise ValueError("clip-level scores need expression predictions")
    ids, first, inverse = np.unique(preds.video_id, return_index=True, return_inverse=True)
    if len(ids) == len(preds):
        return preds
    order = np.argsort(first)  # keep the file's clip order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    clip_of_row = rank[inverse]
    n_clips, n_classes = len(ids), preds.expr_prob.shape[1]
    valid = np.isfinite(preds.expr_prob).all(axis=1)
    sums = np.zeros((n_clips, n_classes))
    np.add.at(sums, clip_of_row[valid], preds.expr_prob[valid])
    counts = np.bincount(clip_of_row[valid], minlength=n_clips).astype(np.float64)
    prob = np.divide(sums, counts[:, None], out=np.full_like(sums, np.nan), where=counts[:, None] > 0)
    truth = np.full(n_clips, -1, np.int64)
    for clip in range(n_clips):
        labels = preds.expr_true[(clip_of_row == clip) & (preds.expr_true >= 0)]
        if len(labels):
            truth[clip] = np.bincount(labels).argmax()
    return Predictions(video_id=ids[order], frame_idx=np.full(n_clips, -1, np.int64), expr_true=truth,
                       expr_prob=prob, expr_classes=preds.expr_classes, label_level="clip")


def clip_metrics(preds: Predictions, bootstrap: int = DEFAULT_CLIP_BOOTSTRAP) -> dict[str, Any]:
    """UAR, WAR (with ``bootstrap`` 95% CIs over clips), per-class recall and confusion counts, JSON-able.

    ``preds`` may hold frames or clips (see :func:`clip_predictions`).
    """
    clips = clip_predictions(preds)
    scored = np.isfinite(clips.expr_prob).all(axis=1) & (clips.expr_true >= 0)
    true, pred = clips.expr_true[scored], np.argmax(clips.expr_prob[scored], axis=1)
    n, names = clips.num_classes, clips.class_names
    table = M.per_class_scores(true, pred, n, names)
    out: dict[str, Any] = {
        "n_clips": int(scored.sum()),
        "n_clips_without_prediction": int((~np.isfinite(clips.expr_prob).all(axis=1)).sum()),
        "aggregation": "clip rows" if clips is preds else "mean of frame probabilities over the clip's faces",
        "uar": M.uar(true, pred, n),
        "war": M.war(true, pred),
        "macro_f1": M.macro_f1(true, pred, n),
        "per_class_recall": {str(c): float(r) for c, r in table["recall"].items()},
        "per_class_support": {str(c): int(s) for c, s in table["support"].items()},
        "confusion_counts": M.confusion_matrix(true, pred, n).tolist(),
        "classes": list(names),
    }
    if bootstrap and len(true):
        out["ci95"] = {"uar": list(M.bootstrap_ci(lambda t, p: M.uar(t, p, n), true, pred, bootstrap)),
                       "war": list(M.bootstrap_ci(M.war, true, pred, bootstrap)),
                       "n_boot": int(bootstrap), "resampled": "clips"}
    return out


def scored_clip_predictions(preds: Predictions) -> Predictions:
    """The clips of :func:`clip_predictions` that have a prediction and a label (for figures)."""
    clips = clip_predictions(preds)
    keep = np.isfinite(clips.expr_prob).all(axis=1) & (clips.expr_true >= 0)
    return clips.subset(keep)
