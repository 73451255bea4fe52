"""Balancing samplers: pure functions from labels to the indices of the frames to train on.

Shaped like imbalanced-learn samplers but working on label arrays only: each
sampler is a small class configured in its constructor (with ``random_state``)
whose ``fit_resample(labels, random_state=None)`` returns the kept indices
(int64; ascending, with repeats for oversampling). Frame training subsets its
``FrameSet`` with them. Module-level functions do the same in one call.

* :class:`VADownsampler` / :func:`va_downsample` -- the paper's valence-arousal
  downsampling (Rangulov & Fahim 2020), including its treatment of (0, 0) frames;
* :class:`ExprDownsampler` -- majority expression classes cut to the minority
  count or to a cap;
* :class:`ExprOversampler` -- minority classes repeated (with replacement) up to
  the majority count or a target;
* :func:`class_weights` -- per-class weights for a weighted loss instead;
* :func:`describe_distribution` -- counts before/after, for reports.

Unannotated frames (EXPR ``-1``, VA NaN) carry nothing to balance: samplers drop
them unless ``keep_unannotated=True`` (useful for multi-task training, where such
a frame may still carry another task's label).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np

RandomState = int | np.random.Generator | None


def _rng(random_state: RandomState) -> np.random.Generator:
    return random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)


# --------------------------------------------------------------------------- VA (the paper's method)


@dataclass
class VADownsampler:
    """The paper's VA downsampling of over-represented regions of the valence-arousal plane.

    Procedure (``fit_resample(va)`` with ``va`` float ``(N, 2)``, NaN rows unannotated):

    1. A ``bins x bins`` (default 40 x 40) 2-D histogram of the annotated frames'
       (valence, arousal), ``np.histogram2d`` defaults: each axis spans that axis'
       own min..max of the labels (not [-1, 1]). Frames labelled exactly (0, 0)
       are counted in the histogram.
    2. The (0, 0) frames are then dropped.
    3. Every other annotated frame is kept with probability
       ``p = clip(1 - d / m, 0, 1)`` where ``d`` is the count of its bin and
       ``m = (mean count over all bins, empty ones included + max bin count) / 2``.
       Frames in bins denser than ``m`` are always dropped; sparse bins are
       nearly all kept. Draws use ``random_state``.

    Deliberate difference from the paper's released code: that code looked up a
    frame's arousal bin using the *valence* bin edges, which puts frames in the
    wrong bins whenever the two axes' ranges differ. Here each coordinate is
    looked up with its own axis' edges, exactly as ``np.histogram2d`` binned it
    (half-open bins, the last one closed), so ``d`` is the count of the bin the
    frame was counted in.

    After ``fit_resample``: ``hist_`` (bins, bins), ``valence_edges_``,
    ``arousal_edges_``, ``m_``, and ``keep_prob_`` (N,) (0 for dropped (0, 0) and
    unannotated frames unless ``keep_unannotated``) describe the last fit.
    """

    bins: int = 40
    random_state: RandomState = None
    keep_unannotated: bool = False
    hist_: np.ndarray | None = field(default=None, init=False, repr=False)
    valence_edges_: np.ndarray | None = field(default=None, init=False, repr=False)
    arousal_edges_: np.ndarray | None = field(default=None, init=False, repr=False)
    m_: float | None = field(default=None, init=False, repr=False)
    keep_prob_: np.ndarray | None = field(default=None, init=False, repr=False)

    def keep_probabilities(self, va: np.ndarray) -> np.ndarray:
        """Per-frame keep probability ``p`` (N,) of step 3, fitting the histogram on ``va``."""
        va = np.asarray(va, dtype=np.float64)
        if va.ndim != 2 or va.shape[1] != 2:
            raise ValueError(f"VA labels must be (N, 2), got shape {va.shape}")
        annotated = ~np.isnan(va).any(axis=1)
        prob = np.where(annotated, 0.0, 1.0 if self.keep_unannotated else 0.0)
        if not annotated.any():
            self.hist_, self.m_ = np.zeros((self.bins, self.bins)), 0.0
            self.keep_prob_ = prob
            return prob
        valence, arousal = va[annotated, 0], va[annotated, 1]
        # Same edges np.histogram2d would choose by default; computed explicitly so the lookup reuses them.
        v_edges = np.histogram_bin_edges(valence, bins=self.bins)
        a_edges = np.histogram_bin_edges(arousal, bins=self.bins)
        hist, _, _ = np.histogram2d(valence, arousal, bins=[v_edges, a_edges])
        m = (hist.mean() + hist.max()) / 2.0
        d = hist[_bin_index(valence, v_edges), _bin_index(arousal, a_edges)]
        p = np.clip(1.0 - d / m, 0.0, 1.0)
        p[(valence == 0.0) & (arousal == 0.0)] = 0.0
        prob[annotated] = p
        self.hist_, self.valence_edges_, self.arousal_edges_, self.m_ = hist, v_edges, a_edges, float(m)
        self.keep_prob_ = prob
        return prob

    def fit_resample(self, va: np.ndarray, random_state: RandomState = None) -> np.ndarray:
        """Indices (ascending int64) of the frames kept; ``random_state`` overrides the constructor's."""
        prob = self.keep_probabilities(va)
        rng = _rng(self.random_state if random_state is None else random_state)
        draws = rng.random(prob.shape[0])
        return np.flatnonzero(draws < prob).astype(np.int64)


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value under ``np.histogram`` rules: [e_i, e_i+1) except the last bin, which is closed."""
    idx = np.searchsorted(edges, values, side="right") - 1
    return np.clip(idx, 0, len(edges) - 2)


def va_downsample(
    va: np.ndarray, bins: int = 40, random_state: RandomState = None, keep_unannotated: bool = False
) -> np.ndarray:
    """Kept indices of the paper's VA downsampling (see :class:`VADownsampler`)."""
    return VADownsampler(bins=bins, random_state=random_state, keep_unannotated=keep_unannotated).fit_resample(va)


# --------------------------------------------------------------------------- EXPR


def _expr_groups(labels: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    classes = np.unique(labels[labels >= 0])
    return labels, {int(c): np.flatnonzero(labels == c) for c in classes}


@dataclass
class ExprDownsampler:
    """Random undersampling of expression classes to ``target`` frames each (without replacement).

    ``target="minority"`` uses the count of the rarest class present; an integer
    is a cap (classes at or below it keep every frame). Classes absent from the
    labels stay absent.
    """

    target: Literal["minority"] | int = "minority"
    random_state: RandomState = None
    keep_unannotated: bool = False

    def fit_resample(self, labels: np.ndarray, random_state: RandomState = None) -> np.ndarray:
        """Indices (ascending int64) of the frames kept."""
        labels, groups = _expr_groups(labels)
        rng = _rng(self.random_state if random_state is None else random_state)
        if not groups:
            kept: list[np.ndarray] = []
        else:
            cap = min(len(g) for g in groups.values()) if self.target == "minority" else int(self.target)
            if cap < 1:
                raise ValueError(f"downsampling target must be >= 1, got {cap}")
            kept = [g if len(g) <= cap else rng.choice(g, size=cap, replace=False) for g in groups.values()]
        if self.keep_unannotated:
            kept.append(np.flatnonzero(labels < 0))
        return np.sort(np.concatenate(kept)).astype(np.int64) if kept else np.zeros(0, np.int64)


@dataclass
class ExprOversampler:
    """Random oversampling: each class present is repeated (with replacement) up to ``target`` frames.

    ``target="majority"`` uses the count of the most frequent class; an integer
    raises smaller classes to it (larger classes keep their frames, none removed).
    Every original frame is kept once; extra draws are added. The result is
    sorted, so repeats sit next to each other -- shuffle when batching.
    """

    target: Literal["majority"] | int = "majority"
    random_state: RandomState = None
    keep_unannotated: bool = False

    def fit_resample(self, labels: np.ndarray, random_state: RandomState = None) -> np.ndarray:
        """Indices (ascending int64, with repeats) of the frames to train on."""
        labels, groups = _expr_groups(labels)
        rng = _rng(self.random_state if random_state is None else random_state)
        kept: list[np.ndarray] = []
        if groups:
            goal = max(len(g) for g in groups.values()) if self.target == "majority" else int(self.target)
            for g in groups.values():
                kept.append(g)
                if len(g) < goal:
                    kept.append(rng.choice(g, size=goal - len(g), replace=True))
        if self.keep_unannotated:
            kept.append(np.flatnonzero(labels < 0))
        return np.sort(np.concatenate(kept)).astype(np.int64) if kept else np.zeros(0, np.int64)


def expr_downsample(labels: np.ndarray, target: Literal["minority"] | int = "minority",
                    random_state: RandomState = None) -> np.ndarray:
    """Kept indices of :class:`ExprDownsampler`."""
    return ExprDownsampler(target=target, random_state=random_state).fit_resample(labels)


def expr_oversample(labels: np.ndarray, target: Literal["majority"] | int = "majority",
                    random_state: RandomState = None) -> np.ndarray:
    """Indices (with repeats) of :class:`ExprOversampler`."""
    return ExprOversampler(target=target, random_state=random_state).fit_resample(labels)


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class loss weights ``w_c = n / (k * n_c)`` (scikit-learn's "balanced"), float32 ``(num_classes,)``.

    ``n`` counts annotated frames, ``k`` the classes present, ``n_c`` the frames
    of class ``c``: the weighted class totals are then equal (``n / k`` each) and
    the mean weight per frame is 1. A class absent from ``labels`` gets weight 0:
    it is never a training target, so its weight cannot matter to the loss.
    """
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    annotated = labels[labels >= 0]
    if annotated.size and annotated.max() >= num_classes:
        raise ValueError(f"label {annotated.max()} out of range for {num_classes} classes")
    counts = np.bincount(annotated, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes, dtype=np.float64)
    if present.any():
        weights[present] = annotated.size / (present.sum() * counts[present])
    return weights.astype(np.float32)


def class_prior(labels: np.ndarray, num_classes: int, pseudo_count: float = 1.0) -> np.ndarray:
    """Training class frequencies ``(n_c + a) / (n + k * a)``, float64 ``(num_classes,)``, all > 0.

    The prior that logit adjustment (Menon et al. 2021) subtracts or adds in log space; the
    pseudo-count ``a`` keeps a class absent from ``labels`` finite in ``log(prior)``.
    Unannotated labels (-1) are ignored.
    """
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    annotated = labels[labels >= 0]
    if annotated.size and annotated.max() >= num_classes:
        raise ValueError(f"label {annotated.max()} out of range for {num_classes} classes")
    counts = np.bincount(annotated, minlength=num_classes).astype(np.float64) + pseudo_count
    return counts / counts.sum()


# --------------------------------------------------------------------------- reports


def describe_distribution(
    expr: np.ndarray | None = None,
    va: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    va_bins: int = 10,
) -> dict[str, Any]:
    """JSON-able summary of a label distribution, for before/after balancing reports.

    ``expr``: ``n_annotated``, ``n_unannotated``, ``counts`` and ``fractions`` per
    class name (all classes of ``class_names``, zeros included) and
    ``imbalance_ratio`` (largest / smallest non-empty class).
    ``va``: ``n_annotated``, ``n_zero_zero`` (frames labelled exactly (0, 0)),
    per-dimension ``mean``/``std``/``min``/``max``, and ``hist`` -- a
    ``va_bins x va_bins`` count grid over the fixed square [-1, 1]^2 (rows:
    valence, columns: arousal), so that grids before and after are comparable.
    """
    out: dict[str, Any] = {}
    if expr is not None:
        labels = np.asarray(expr).astype(np.int64).reshape(-1)
        annotated = labels[labels >= 0]
        n_classes = len(class_names) if class_names is not None else int(annotated.max(initial=-1)) + 1
        names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
        counts = np.bincount(annotated, minlength=n_classes)[:n_classes] if annotated.size else np.zeros(n_classes, int)
        nonzero = counts[counts > 0]
        out["expr"] = {
            "n_annotated": int(annotated.size),
            "n_unannotated": int(labels.size - annotated.size),
            "counts": {name: int(c) for name, c in zip(names, counts)},
            "fractions": {name: (float(c) / annotated.size if annotated.size else 0.0) for name, c in zip(names, counts)},
            "imbalance_ratio": float(nonzero.max() / nonzero.min()) if nonzero.size else float("nan"),
        }
    if va is not None:
        values = np.asarray(va, dtype=np.float64)
        annotated_va = values[~np.isnan(values).any(axis=1)]
        hist, _, _ = np.histogram2d(annotated_va[:, 0], annotated_va[:, 1], bins=va_bins, range=[[-1, 1], [-1, 1]])
        empty = annotated_va.size == 0
        stats = {
            key: [float("nan")] * 2 if empty else [float(x) for x in fn(annotated_va, axis=0)]
            for key, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max))
        }
        out["va"] = {
            "n_annotated": int(annotated_va.shape[0]),
            "n_zero_zero": int(np.sum((annotated_va[:, 0] == 0) & (annotated_va[:, 1] == 0))),
            **stats,
            "hist": hist.astype(int).tolist(),
        }
    return out
