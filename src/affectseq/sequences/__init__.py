"""affectseq.sequences stage: windows over the feature store.

* :mod:`affectseq.sequences.windows` -- :class:`WindowSpec` (seq2one / seq2seq, length, stride)
  and :class:`WindowIndex` (run-length index of valid windows; never crosses a video);
* :mod:`affectseq.sequences.dataset` -- :class:`WindowDataset` (windows as named samples with
  masks), :func:`collate_windows`, :func:`balanced_window_indices` (window-level balancing).
"""
