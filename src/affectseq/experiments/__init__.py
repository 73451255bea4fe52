"""affectseq.experiments stage."""
