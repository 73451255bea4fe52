"""affectseq.models stage: temporal networks (plain ``nn.Module``s, no losses).

* :mod:`affectseq.models.temporal` -- :class:`TemporalConfig`, :class:`TemporalModel`
  (GRU/LSTM stack; default the paper's GRU 100-100-50; seq2one/seq2seq; mask channel; ``step``);
* the task heads are :class:`affectseq.features.heads.TaskHeads` (shared with the frame model);
* :mod:`affectseq.models.streaming` -- :class:`StreamingPredictor` for live, frame-by-frame use;
* :mod:`affectseq.models.bundle` -- :func:`load_sequence_bundle`: a checked sequence-model file
  (format: :mod:`affectseq.modelfile`) rebuilt into its frame and temporal networks.
"""
