"""affectseq.predict stage."""
