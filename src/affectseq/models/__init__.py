"""affectseq.models stage: temporal networks (plain ``nn.Module``s, no losses) and the one network factory.

* :mod:`affectseq.models.registry` -- temporal architectures by name (:func:`register_temporal`);
  the built-in ones, registered by importing them below: ``gru``/``lstm`` (:mod:`~affectseq.models.rnn`,
  default the paper's GRU 100-100-50), ``tcn`` (:mod:`~affectseq.models.tcn`), ``transformer``
  (:mod:`~affectseq.models.transformer`);
* :mod:`affectseq.models.temporal` -- :class:`TemporalConfig`, :class:`TemporalModel` (any registered
  backbone + masking, mask channel, task heads, seq2one/seq2seq/clip outputs, ``step`` streaming);
* the task heads are :class:`affectseq.features.heads.TaskHeads` (shared with the frame model);
* :mod:`affectseq.models.streaming` -- :class:`StreamingPredictor` for live, frame-by-frame use;
* :mod:`affectseq.models.bundle` -- :func:`load_sequence_bundle`: a checked sequence-model file
  (format: :mod:`affectseq.modelfile`) rebuilt into its frame and temporal networks.
"""

# The built-in temporal architectures register themselves on import (one line each).
from affectseq.models import rnn, tcn, transformer  # noqa: F401
