"""affectseq.models stage."""
