"""Scoring models, shared by frame and sequence training and ``affectseq evaluate --model``.

The loss of a batch, the metrics of a set of predictions, the score that selects the
best epoch, the predictions file; and for frame models, predicting a FrameSet subset
and scoring a trained model on a dataset split (both training tasks use it). Metrics come only from :mod:`affectseq.metrics`. The predictions file follows
the run-directory contract (``val_predictions.npz``/``test_predictions.npz``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from affectseq import labels, metrics
from affectseq.data.frames import FrameSet
from affectseq.errors import InputError
from affectseq.features.frame_model import FrameModel
from affectseq.features.heads import PREDICTION_FILE_KEYS, head_outputs
from affectseq.training.frame_data import FrameDataset, collate_batch, frame_ids
from affectseq.training.losses import au_loss, ccc_loss, expr_loss, mse_loss
from affectseq.utils.atomic import atomic_path


@torch.no_grad()
def predict_frames(model: FrameModel, loader: torch.utils.data.DataLoader, tta_flip: bool = False,
                   va_loss: str = "ccc", with_loss: bool = True) -> dict[str, np.ndarray]:
    """Run ``model`` over ``loader``: truths, predictions and the mean loss (``loss``, 0-d array).

    ``tta_flip`` averages each output with that of the horizontally flipped input.
    ``with_loss=False`` skips the loss (NaN): scoring a model on a dataset whose label
    space differs from its own, where the loss is undefined.
    """
    model.eval()
    device = next(model.parameters()).device
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("expr_true", "va_true", "au_true",
                                                        "expr_prob", "va_pred", "au_prob")}
    losses: list[float] = []
    for x, expr, va, au in loader:
        x = x.to(device, non_blocking=True, memory_format=torch.channels_last)
        pred = model(x)
        if tta_flip:
            flipped = model(torch.flip(x, dims=[3]))
            for task in pred:
                if task == "expr":  # average probabilities, kept as log-probabilities (valid logits)
                    pred[task] = torch.log((torch.softmax(pred[task], 1) + torch.softmax(flipped[task], 1)) / 2)
                else:
                    pred[task] = (pred[task] + flipped[task]) / 2
        if with_loss:
            losses.append(float(batch_loss(pred, *(t.to(device) for t in (expr, va, au)), va_loss=va_loss)))
        pred = {task: value.float().cpu() for task, value in pred.items()}
        out["expr_true"].append(expr.numpy())
        out["va_true"].append(va.numpy())
        out["au_true"].append(au.numpy())
        for key, value in head_outputs(pred).items():
            out[PREDICTION_FILE_KEYS[key]].append(value.numpy())
    result = {k: np.concatenate(v) for k, v in out.items() if v}
    result["loss"] = np.asarray(np.mean(losses) if losses else np.nan)
    return result


def batch_loss(pred: dict[str, torch.Tensor], expr: torch.Tensor, va: torch.Tensor, au: torch.Tensor,
               class_weights: torch.Tensor | None = None, label_smoothing: float = 0.0,
               va_loss: str = "ccc", expr_logit_offset: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of the masked losses of the tasks the model predicts (0 when the batch has no target).

    ``expr_logit_offset`` (C,) is added to the EXPR logits inside the loss only: the logit-adjusted
    loss of Menon et al. (2021) with offset ``tau * log(prior)``; the model's own outputs stay unadjusted.
    """
    terms = []
    if "expr" in pred:
        logits = pred["expr"] if expr_logit_offset is None else pred["expr"] + expr_logit_offset
        terms.append(expr_loss(logits, expr, class_weights, label_smoothing))
    if "va" in pred:
        terms.append((ccc_loss if va_loss == "ccc" else mse_loss)(pred["va"], va))
    if "au" in pred:
        terms.append(au_loss(pred["au"], au))
    present = [t for t in terms if t is not None]
    if not present:
        return next(iter(pred.values())).sum() * 0.0  # keeps the graph valid for an all-unannotated batch
    return torch.stack(present).sum()


def frame_metrics(pred: dict[str, np.ndarray], num_classes: int) -> dict[str, float]:
    """Validation/test metrics of the tasks present in ``pred`` (from :mod:`affectseq.metrics`)."""
    scores: dict[str, float] = {}
    if "expr_prob" in pred:
        y_true, y_pred = pred["expr_true"], pred["expr_prob"].argmax(1)
        scores["expr_accuracy"] = metrics.accuracy(y_true, y_pred)
        scores["expr_macro_f1"] = metrics.macro_f1(y_true, y_pred, num_classes)
        scores["expr_uar"] = metrics.uar(y_true, y_pred, num_classes)
        if num_classes in (7, 8):  # a dataset's own classes (a study's "calm", "pain") have no ABAW score
            scores["expr_abaw_score"] = metrics.abaw_expr_score(y_true, y_pred, num_classes)
    if "va_pred" in pred:
        ccc_v, ccc_a = metrics.ccc_per_dim(pred["va_true"], pred["va_pred"])
        scores.update(va_ccc_valence=float(ccc_v), va_ccc_arousal=float(ccc_a),
                      va_mean_ccc=float((ccc_v + ccc_a) / 2))
    if "au_prob" in pred:
        scores["au_macro_f1"] = metrics.au_macro_f1(pred["au_true"].astype(np.int8), pred["au_prob"])
    return scores


def selection_score(scores: dict[str, float], select_metric: str) -> float:
    """The number early stopping maximises: a named metric, or for ``auto`` the mean of each task's ABAW score
    (macro-F1 for expressions outside the 7/8 canonical classes)."""
    if select_metric != "auto":
        if select_metric not in scores:
            raise KeyError(f"select_metric {select_metric!r} not among {sorted(scores)}")
        return float(scores[select_metric])
    expr_key = "expr_abaw_score" if "expr_abaw_score" in scores else "expr_macro_f1"  # own class names
    parts = [scores[k] for k in (expr_key, "va_mean_ccc", "au_macro_f1") if k in scores]
    return float(np.mean(parts))


def write_predictions(path: str | Path, frame_set: FrameSet, indices: np.ndarray, pred: dict[str, np.ndarray],
                      expr_classes: tuple[str, ...], label_level: str | None = None) -> None:
    """Write ``*_predictions.npz`` per the run-directory contract (atomically).

    ``label_level`` (default: the frame set's, else ``"frame"``): ``"clip"`` when each video is a
    clip with one label, so ``affectseq evaluate`` also scores clips (UAR/WAR over clips).
    """
    video_id, frame_idx = frame_ids(frame_set, indices)
    level = label_level or getattr(frame_set, "label_level", "frame")
    save_predictions_npz(path, {"video_id": video_id, "frame_idx": frame_idx,
                                "label_level": np.asarray("clip" if level == "clip" else "frame")}, pred, expr_classes)


def save_predictions_npz(path: str | Path, ids: dict[str, np.ndarray], pred: dict[str, np.ndarray],
                         expr_classes: Sequence[str]) -> None:
    """Write a run directory's ``*_predictions.npz`` (the contract's per-task arrays) atomically.

    ``ids`` holds the per-frame identification columns (``video_id``, ``frame_idx``, ...);
    ``pred`` the task arrays as the evaluation loops return them. Shared by both stages
    so the file format that ``affectseq evaluate`` reads is written in one place.
    """
    arrays: dict[str, Any] = dict(ids)
    if "expr_prob" in pred:
        arrays.update(expr_true=pred["expr_true"].astype(np.int64), expr_prob=pred["expr_prob"].astype(np.float32),
                      expr_classes=np.asarray(expr_classes, dtype=str))
    if "va_pred" in pred:
        arrays.update(va_true=pred["va_true"].astype(np.float32), va_pred=pred["va_pred"].astype(np.float32))
    if "au_prob" in pred:
        arrays.update(au_true=pred["au_true"].astype(np.int8), au_prob=pred["au_prob"].astype(np.float32))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def make_eval_loader(frame_set: FrameSet, indices: np.ndarray, model: FrameModel, batch_size: int,
                     num_workers: int = 0, framing: str | None = None) -> torch.utils.data.DataLoader:
    """A non-shuffled, non-augmented loader over a FrameSet subset (``framing``: of its images, if not the model's)."""
    dataset = FrameDataset(frame_set, indices, model.spec, framing=framing)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                       collate_fn=collate_batch)


def align_expr_prob(prob: np.ndarray, model_classes: Sequence[str], data_classes: Sequence[str]) -> np.ndarray:
    """Model probabilities re-expressed over ``data_classes`` (see :func:`affectseq.labels.class_index_map`).

    A data class the model lacks gets probability 0; model classes the data lacks
    are dropped and each row renormalised, so the argmax is the model's best guess
    among the classes the data can hold.
    """
    if tuple(model_classes) == tuple(data_classes):
        return prob
    out = np.zeros((len(prob), len(data_classes)), dtype=np.float32)
    for j, col in enumerate(labels.class_index_map(model_classes, data_classes)):
        if col is not None:
            out[:, j] = prob[:, col]
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)


def train_duplicate_mask(frame_set: FrameSet, train_set: FrameSet) -> np.ndarray:
    """True for each image of ``frame_set`` whose pixels occur exactly in ``train_set`` (in-memory sets)."""
    images, train_images = getattr(frame_set, "images", None), getattr(train_set, "images", None)
    if images is None or train_images is None:
        raise InputError(frame_set.name, "dropping training duplicates needs an in-memory image set (.npz)")

    def keys(a: np.ndarray) -> np.ndarray:  # one opaque bytes value per image: exact pixel equality
        flat = np.ascontiguousarray(a.reshape(len(a), -1))
        return flat.view(np.dtype((np.void, flat.shape[1]))).ravel()

    return np.isin(keys(images), keys(train_images))


@dataclass
class ModelScoringConfig:
    """What :func:`score_frame_model` scored: recorded as the output folder's ``config.yaml``."""

    model: str = "default"
    data: str = ""
    split: str = "test"
    tta_flip: bool = False
    batch_size: int = 256
    threads: int | None = None
    device: str = "auto"  # as in frame training: auto = CUDA when available, else CPU
    drop_classes: tuple[str, ...] = ()  # frames of these true classes are left out (e.g. Contempt: FER+ 7-class)
    drop_train_duplicates: bool = False  # leave out images whose pixels occur in the training split


def score_frame_model(config: ModelScoringConfig, out_dir: str | Path, command: str | None = None
                      ) -> tuple[Path, dict[str, float]]:
    """Predict one split of a dataset with a trained frame model; write its predictions file.

    ``out_dir`` becomes a run-like folder (``config.yaml``, ``run.json`` and
    ``val_predictions.npz``/``test_predictions.npz``/``train_predictions.npz`` by the
    split's role) that ``affectseq.evaluation.evaluate_run(out_dir, split=role)`` reports on.
    Returns the predictions path and the headline metrics. The images are cropped to
    the model's framing when the dataset's differs (e.g. the FER2013 model on ABAW crops);
    the model's classes are matched to the dataset's by name (:func:`align_expr_prob`), so an
    8-class FER+ model scores on FER2013's 7 classes. ``metrics["n_left_out"]`` counts frames
    left out by ``drop_classes``/``drop_train_duplicates``.
    """
    from affectseq.models.factory import load_frame_model
    from affectseq.training.distributed import DistContext
    from affectseq.data.splits import split_role
    from affectseq.training.frame_data import load_frame_split
    from affectseq.utils.rundir import init_run_dir, predictions_file
    from affectseq.utils.threads import torch_threads

    with torch_threads(config.threads):
        model = load_frame_model(config.model, device=DistContext().device(config.device))
        task = model.tasks[0] if len(model.tasks) == 1 else "multi"
        frame_set, framing = load_frame_split(config.data, task, config.split)
        data_classes = tuple(frame_set.expr_classes) or tuple(model.expr_classes)
        indices, kept_classes = _scored_subset(config, frame_set, data_classes, task)
        out = init_run_dir(out_dir, config, seed=0, command=command)
        loader = make_eval_loader(frame_set, indices, model, config.batch_size, framing=framing)
        pred = predict_frames(model, loader, tta_flip=config.tta_flip, with_loss=False)
    if "expr_prob" in pred:
        relabel = np.array([kept_classes.index(c) if c in kept_classes else -1 for c in data_classes] + [-1])
        pred["expr_true"] = relabel[pred["expr_true"]]  # -1 (unannotated) indexes the trailing -1
        pred["expr_prob"] = align_expr_prob(pred["expr_prob"], model.expr_classes, kept_classes)
    path = out / predictions_file(split_role(config.split))
    write_predictions(path, frame_set, indices, pred, kept_classes if "expr_prob" in pred else ())
    scores = frame_metrics(pred, len(kept_classes))
    scores["n_left_out"] = float(len(frame_set) - len(indices))
    return path, scores


def _scored_subset(config: ModelScoringConfig, frame_set: FrameSet, data_classes: tuple[str, ...],
                   task: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(frame indices to score, classes kept)`` after ``drop_classes`` and ``drop_train_duplicates``."""
    from affectseq.training.frame_data import load_frame_split

    unknown = [c for c in config.drop_classes if c not in data_classes]
    if unknown:
        raise InputError(config.data, f"cannot drop {unknown}: the dataset's classes are {list(data_classes)}")
    keep = np.ones(len(frame_set), dtype=bool)
    if config.drop_classes and frame_set.expr is not None:
        keep &= ~np.isin(frame_set.expr, [data_classes.index(c) for c in config.drop_classes])
    if config.drop_train_duplicates:
        keep &= ~train_duplicate_mask(frame_set, load_frame_split(config.data, task, "train")[0])
    return np.flatnonzero(keep), tuple(c for c in data_classes if c not in config.drop_classes)
