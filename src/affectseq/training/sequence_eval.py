"""Running a temporal model over windows: batched loss, per-frame predictions, the predictions file.

Losses and metrics are shared with frame training (:mod:`affectseq.training.scoring`,
which takes them from :mod:`affectseq.training.losses` and :mod:`affectseq.metrics`),
so a frame run and a sequence run report the same metric names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from affectseq.features.heads import PREDICTION_FILE_KEYS, head_outputs
from affectseq.models.temporal import TemporalModel
from affectseq.sequences.dataset import WindowDataset, collate_windows
from affectseq.training.scoring import batch_loss, save_predictions_npz


def window_loss(
    model: TemporalModel, batch: dict[str, torch.Tensor], device: torch.device, va_loss: str = "ccc",
    class_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(masked loss of the batch, model outputs); seq2seq outputs are scored per frame."""
    out = model(batch["features"].to(device), batch["mask"].to(device))
    expr, va, au = (batch[k].to(device) for k in ("expr", "va", "au"))
    if model.config.mode == "seq2seq":
        flat = {task: y.reshape(-1, y.shape[-1]) for task, y in out.items()}
        loss = batch_loss(flat, expr.reshape(-1), va.reshape(-1, 2), au.reshape(-1, au.shape[-1]),
                          class_weights=class_weights, va_loss=va_loss)
    else:
        loss = batch_loss(out, expr, va, au, class_weights=class_weights, va_loss=va_loss)
    return loss, out


@torch.no_grad()
def predict_windows(
    model: TemporalModel,
    dataset: WindowDataset,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    va_loss: str = "ccc",
    num_workers: int = 0,
) -> dict[str, np.ndarray]:
    """Predictions per evaluated frame, with truths and the mean loss (key ``loss``).

    Rows: seq2one -- one per window, the predicted (target) frame; clip samples
    (:class:`~affectseq.sequences.clips.ClipDataset`) -- one per clip, ``frame_idx`` -1; seq2seq -- every
    frame inside the video of every window (padding dropped). Keys follow the
    run-directory contract (``expr_true``/``expr_prob``, ``va_true``/``va_pred``,
    ``au_true``/``au_prob``) plus ``video`` (position in ``dataset.video_ids``),
    ``frame_idx`` and ``has_feature``.
    """
    device = torch.device(device)
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         collate_fn=collate_windows, num_workers=num_workers)
    parts: dict[str, list[np.ndarray]] = {}
    total_loss, n_batches = 0.0, 0
    for batch in loader:
        loss, out = window_loss(model, batch, device, va_loss)
        total_loss += float(loss)
        n_batches += 1
        if model.config.mode != "seq2seq":  # seq2one windows and clip samples: one row each
            keep = np.ones(len(batch["video"]), dtype=bool)
            target = batch["target_frame_idx"].numpy()
            rows = {
                "video": batch["video"].numpy(),
                "frame_idx": target,
                # The target's own face is not an input in seq2one; report whether the last input frame had one.
                # A clip sample (target -1: the whole clip) reports whether any sampled frame had a face.
                "has_feature": np.where(target >= 0, batch["mask"][:, -1].numpy(), batch["mask"].any(1).numpy()),
            }
        else:
            frame_idx = batch["frame_idx"].numpy()
            keep = frame_idx >= 0
            rows = {
                "video": np.broadcast_to(batch["video"].numpy()[:, None], frame_idx.shape),
                "frame_idx": frame_idx,
                "has_feature": batch["mask"].numpy(),
            }
        for key, value in head_outputs({task: y.cpu() for task, y in out.items()}).items():
            rows[PREDICTION_FILE_KEYS[key]] = value.numpy()
        for task in out:
            rows[f"{task}_true"] = batch[task].numpy()
        for key, value in rows.items():
            parts.setdefault(key, []).append(np.asarray(value)[keep])
    result = {key: np.concatenate(chunks) for key, chunks in parts.items()}
    result["loss"] = np.asarray(total_loss / max(n_batches, 1))
    return result


def write_sequence_predictions(
    path: str | Path, pred: dict[str, np.ndarray], video_ids: Sequence[str], expr_classes: Sequence[str],
    label_level: str = "frame",
) -> None:
    """Write ``val_predictions.npz`` per the run-directory contract (atomically).

    ``label_level="clip"``: one row per clip (``frame_idx`` -1), recorded in the file so
    ``affectseq evaluate`` reports UAR/WAR over clips.
    """
    ids = {
        "video_id": np.asarray(video_ids, dtype=str)[pred["video"]] if len(pred.get("video", [])) else
        np.zeros(0, dtype=str),
        "frame_idx": pred["frame_idx"].astype(np.int64),
        "has_feature": pred["has_feature"].astype(bool),
        "label_level": np.asarray(label_level),
    }
    save_predictions_npz(path, ids, pred, expr_classes)
