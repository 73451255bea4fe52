"""Sequence bundles in ``predict``: frame-encoder features per face, then the trained GRU/LSTM per track.

A bundle from ``affectseq train-sequence`` (``load_sequence_bundle``) holds the
frame model that made its training features and the temporal model. Over each
face track the temporal model sees a regular timeline of processed frames;
frames where the face is missing are gaps (zero features, mask False), exactly
as in training windows (:mod:`affectseq.sequences.windows`).

* every ``seq2one`` model (offline or causal): the prediction for frame ``t`` comes
  from the window of the model's length ``W`` *before* it, frames ``[t - W, t)``,
  because that is what it was trained on (:mod:`affectseq.sequences.windows`: the
  window ``[t - W, t)`` predicts the label of frame ``t``; frame ``t``'s own face is
  not an input). A frame whose window holds no face at all (the first frame of a
  track, or one after a gap of ``W`` or more frames) gets no prediction (NaN):
  training has no such windows;
* ``causal`` (streaming) with a ``seq2seq`` model: frame ``t`` takes the last output
  of the trailing window ``(t - W, t]`` (row ``t`` of a window predicts frame ``t``),
  what :class:`affectseq.models.streaming.StreamingPredictor` gives live;
* ``offline`` with a ``seq2seq`` model (bidirectional allowed): windows of ``W``
  frames every ``W/2``; each frame takes the output of the window where it is
  most central, so it sees context on both sides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectseq.errors import ConfigError, InputError
from affectseq.predict.stages import ModelBundle, ModelInfo
from affectseq.utils.hashing import sha256_file

_CHUNK = 64  # windows per temporal-model batch (bounds memory: 64 x W x D floats)


class SequenceTemporal:
    """Temporal stage running a :class:`affectseq.models.temporal.TemporalModel` over each track."""

    def __init__(self, model, window: int, device: str = "cpu"):
        self.model = model
        self.window = max(int(window), 1)
        self.device = device
        self.seq2seq = model.config.mode == "seq2seq"

    def run_track(
        self, outputs: dict[str, np.ndarray], time_sec: np.ndarray, step_idx: np.ndarray, mode: str
    ) -> dict[str, np.ndarray]:
        feats = outputs["features"]
        pos = np.asarray(step_idx, np.int64) - int(step_idx[0])
        length = int(pos[-1]) + 1
        dense = np.zeros((length, feats.shape[1]), np.float32)
        mask = np.zeros(length, bool)
        dense[pos], mask[pos] = feats, True
        if mode == "offline" and self.seq2seq:
            return {key: value[pos] for key, value in self._centred(dense, mask).items()}
        return self._trailing(dense, mask, pos)

    def _run(self, x: np.ndarray, m: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            out = self.model(torch.from_numpy(np.ascontiguousarray(x)).to(self.device),
                             torch.from_numpy(np.ascontiguousarray(m)).to(self.device))
        result = {}
        if "expr" in out:
            result["expr_prob"] = torch.softmax(out["expr"].float(), dim=-1).cpu().numpy()
        if "va" in out:
            result["va"] = out["va"].float().cpu().numpy()
        return result

    def _trailing(self, dense: np.ndarray, mask: np.ndarray, pos: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs at track positions ``pos`` from trailing windows, left-padded with masked frames.

        seq2one: window ``[t - W, t)`` (the frames before ``t``, as in training); NaN where
        it holds no face. seq2seq: window ``(t - W, t]``, its last row.
        """
        w = self.window
        lag = 0 if self.seq2seq else 1  # seq2one predicts the frame right after its window
        pad = w - 1 + lag
        padded = np.concatenate([np.zeros((pad, dense.shape[1]), np.float32), dense])
        padded_mask = np.concatenate([np.zeros(pad, bool), mask])
        # Window i covers dense[i - pad : i - pad + w]; only the positions with a face are run.
        windows = np.lib.stride_tricks.sliding_window_view(padded, w, axis=0)  # (L, D, W), a view
        window_masks = np.lib.stride_tricks.sliding_window_view(padded_mask, w)
        parts: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(pos), _CHUNK):
            rows = pos[start:start + _CHUNK]
            x, m = windows[rows].transpose(0, 2, 1), window_masks[rows]
            for key, value in self._run(x, m).items():
                value = value[:, -1] if self.seq2seq else value
                parts.setdefault(key, []).append(np.where(m.any(axis=1)[:, None], value, np.nan))
        return {k: np.concatenate(v).astype(np.float32) for k, v in parts.items()}

    def _centred(self, dense: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        """seq2seq offline: windows every W/2 frames; each frame keeps its most central window's output."""
        w, length = self.window, len(dense)
        hop = max(w // 2, 1)
        starts = list(range(0, max(length - w, 0) + 1, hop))
        if starts[-1] + w < length:
            starts.append(length - w)
        result: dict[str, np.ndarray] = {}
        best = np.full(length, np.inf)
        for start in starts:
            stop = min(start + w, length)
            x = np.zeros((1, w, dense.shape[1]), np.float32)
            m = np.zeros((1, w), bool)
            x[0, :stop - start], m[0, :stop - start] = dense[start:stop], mask[start:stop]
            out = self._run(x, m)
            frames = np.arange(start, stop)
            dist = np.abs(frames - (start + (w - 1) / 2))
            take = dist < best[frames]
            for key, value in out.items():
                if key not in result:
                    result[key] = np.zeros((length, value.shape[-1]), np.float32)
                result[key][frames[take]] = value[0, :stop - start][take]
            best[frames[take]] = dist[take]
        return result


def load_sequence_model(path: Path, *, model_id: str, backend: str, device: str) -> ModelBundle:
    """A :class:`ModelBundle` from a sequence checkpoint (frame encoder features + temporal model)."""
    from affectseq.predict.frame_stage import TorchFrameStage
    from affectseq.training.checkpoints import load_sequence_bundle

    if backend != "torch":
        raise ConfigError("sequence models run on the torch backend only (use --backend torch)")
    bundle = load_sequence_bundle(path, device=device)
    if bundle.frame_model is None:
        raise InputError(path, "sequence model was trained on external features and has no frame model, "
                               "so it cannot run on raw video")
    temporal = bundle.temporal_model.to(device).eval()
    config = temporal.config
    heads = dict(temporal.head_sizes)
    classes = tuple(bundle.expr_classes) if "expr" in heads else ()
    info = ModelInfo(
        model_id=model_id,
        kind="sequence",
        classes=classes,
        has_va="va" in heads,
        source=str(path),
        sha256=sha256_file(path),
        temporal=f"{config.cell.upper()} {'-'.join(map(str, config.hidden_sizes))}"
                 f"{' bidirectional' if config.bidirectional else ''} {config.mode}, window {bundle.window} frames",
        extra={"encoder": bundle.frame_model.spec.name, "window": bundle.window, "backend": backend,
               "device": device},
    )
    return ModelBundle(
        frame_stage=TorchFrameStage(bundle.frame_model, device, output="features"),
        temporal_stage=SequenceTemporal(temporal, bundle.window, device),
        info=info,
        # A bidirectional seq2seq model needs frames after t; seq2one windows end at t either way.
        causal_ok=not (config.bidirectional and config.mode == "seq2seq"),
    )
