"""affectseq.evaluation stage."""
