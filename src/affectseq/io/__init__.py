"""affectseq.io stage."""
