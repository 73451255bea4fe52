"""affectseq.data stage."""
