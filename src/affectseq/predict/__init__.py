"""Video prediction: any video in, per-frame emotions out (``affectseq predict``).

Stages (each pluggable, chained by :mod:`.pipeline`): decode and the face stream
(:mod:`affectseq.faces.stream`, shared with extraction) -> frame stage
(batched CNN, from :mod:`.model`) -> temporal stage (smoothing or a trained RNN from a
sequence bundle, :mod:`.stages`, :mod:`.sequence`; live: :mod:`.streaming`) -> :mod:`.table`
(frames table) -> :mod:`.writers` (one per output file: :mod:`.outputs`, :mod:`.timeline`, :mod:`.overlay`) with
:mod:`.batch` running many videos.
Heavy modules load lazily.
"""

from __future__ import annotations

from affectseq.utils.lazy import lazy_exports

_LAZY: dict[str, str] = {
    "load_model": "affectseq.predict.model",
    "ModelBundle": "affectseq.predict.stages",
    "ModelInfo": "affectseq.predict.stages",
    "SmoothingTemporal": "affectseq.predict.stages",
    "PredictOptions": "affectseq.predict.pipeline",
    "predict_video_table": "affectseq.predict.pipeline",
    "OutputOptions": "affectseq.predict.writers",
    "OutputWriter": "affectseq.predict.writers",
    "register_output": "affectseq.predict.writers",
    "run_batch": "affectseq.predict.engines",
    "predict_batch": "affectseq.predict.engines",
    "create_engine": "affectseq.predict.engines",
    "smooth_track": "affectseq.predict.smoothing",
    "CausalSmoother": "affectseq.predict.smoothing",
    "LivePredictor": "affectseq.predict.streaming",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
