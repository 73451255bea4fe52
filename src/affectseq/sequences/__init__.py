"""affectseq.sequences stage."""
