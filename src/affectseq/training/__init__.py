"""affectseq.training stage."""
