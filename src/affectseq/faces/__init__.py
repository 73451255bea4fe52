"""affectseq.faces stage."""
