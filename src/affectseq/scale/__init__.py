"""affectseq.scale stage."""
