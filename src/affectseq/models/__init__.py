"""affectseq.models stage: temporal networks and heads (plain ``nn.Module``s, no files, no losses).

* :mod:`affectseq.models.temporal` -- :class:`TemporalConfig`, :class:`TemporalModel`
  (GRU/LSTM stack; default the paper's GRU 100-100-50; seq2one/seq2seq; mask channel; ``step``);
* :mod:`affectseq.models.heads` -- :class:`TaskHeads` (expr logits, va tanh, au logits);
* :mod:`affectseq.models.streaming` -- :class:`StreamingPredictor` for live, frame-by-frame use.
"""
