"""affectseq: emotion recognition on video with frame CNN features and recurrent temporal models."""

__version__ = "0.1.0"
