"""Live prediction with a temporal model: push one frame's features at a time, get predictions.

Two policies:

* ``"window"`` (default, any model): keep the last W frames in a ring buffer and
  re-run the model on them, exactly the input distribution it was trained on
  (a seq2one model trained on 100-frame windows is never asked about frame 1,000
  of an unbroken state). Cost: W recurrent steps per frame, still far cheaper
  than the frame CNN for the paper's sizes.
* ``"stateful"`` (causal models): carry the state with :meth:`TemporalModel.step`; O(1) per
  frame for recurrent models (a TCN re-runs its receptive field, a causal transformer every
  frame seen so far), for models trained on long windows.

For a seq2one model the prediction after pushing frame ``t`` is its estimate for
frame ``t + 1`` (the paper's setup); callers that want "now" use it as such.

The window policy in parts: :meth:`StreamingPredictor.add` appends a frame,
:meth:`~StreamingPredictor.last_window` gives the window and :meth:`~StreamingPredictor.run`
runs the model on a batch of windows. ``predict``'s sequence stage
(:mod:`affectseq.predict.sequence`) builds its windows with them, live or batched.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from affectseq.features.heads import head_outputs
from affectseq.models.temporal import TemporalModel


class StreamingPredictor:
    """Feed frames one by one (features + whether a face was found); returns ``{task: np.ndarray}``."""

    def __init__(self, model: TemporalModel, window: int = 100,
                 policy: Literal["window", "stateful"] = "window", device: str | torch.device = "cpu"):
        if policy not in ("window", "stateful"):
            raise ValueError(f"policy must be 'window' or 'stateful', got {policy!r}")
        self.model = model.eval().to(device)
        self.window = int(window)
        self.policy = policy
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        """Forget all context (e.g. at a cut or a new video)."""
        self._feats = np.zeros((self.window, self.model.input_dim), dtype=np.float32)
        self._mask = np.zeros(self.window, dtype=bool)
        self._seen = 0
        self._state = self.model.init_state(1, self.device) if self.policy == "stateful" else None

    @torch.no_grad()
    def push(self, features: np.ndarray | None, has_face: bool = True) -> dict[str, np.ndarray]:
        """Add one frame (``features`` (D,) or None for a frame without a face) and predict.

        Outputs are :func:`affectseq.features.heads.head_outputs`: ``expr_prob`` / ``au_prob``
        probabilities (softmax / sigmoid), ``va`` values.
        """
        if self.policy == "stateful":
            valid = bool(has_face and features is not None)
            row = np.asarray(features, np.float32) if valid else np.zeros(self.model.input_dim, np.float32)
            x = torch.from_numpy(row).to(self.device)[None]
            m = torch.tensor([valid], device=self.device)
            outputs, self._state = self.model.step(x, m, self._state)
            self._seen += 1
            return {key: y[0].cpu().numpy() for key, y in head_outputs(outputs).items()}
        self.add(features if has_face else None)
        x, m = self.last_window()
        return {task: y[0] for task, y in self.run(x[None], m[None], last=True).items()}

    def add(self, features: np.ndarray | None) -> None:
        """Window policy: append one frame to the window without running the model (None: no face)."""
        if self.policy != "window":
            raise ValueError("add() keeps a window; a stateful predictor must push() every frame")
        valid = features is not None
        # np.roll makes new arrays, so a window returned by last_window() earlier is never changed.
        self._feats = np.roll(self._feats, -1, axis=0)
        self._mask = np.roll(self._mask, -1)
        self._feats[-1] = np.asarray(features, np.float32) if valid else 0.0
        self._mask[-1] = valid
        self._seen += 1

    def last_window(self) -> tuple[np.ndarray, np.ndarray]:
        """The last W frames, oldest first: features (W, D) and mask (W,) (False = no face or before the start)."""
        return self._feats, self._mask

    @torch.no_grad()
    def run(self, x: np.ndarray, m: np.ndarray, last: bool = False) -> dict[str, np.ndarray]:
        """The model on a batch of windows (N, W, D) / (N, W): per task (N, C), or (N, W, C) for a
        ``seq2seq`` model unless ``last`` (its last row, the newest frame); activations as :meth:`push`."""
        xt = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device)
        mt = torch.from_numpy(np.ascontiguousarray(m)).to(self.device)
        outputs = self.model(xt, mt)
        if last and self.model.config.mode == "seq2seq":
            outputs = {task: y[:, -1] for task, y in outputs.items()}
        return {key: y.cpu().numpy() for key, y in head_outputs(outputs).items()}

    @property
    def frames_seen(self) -> int:
        return self._seen
