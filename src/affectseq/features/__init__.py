"""affectseq.features stage."""
