"""Stage 7, training: losses, augmentations, the frame loop (``frames``) and the sequence loop (``sequence``).

Frame training: :func:`affectseq.training.frames.train_frames` with a
:class:`~affectseq.training.frames.FrameTrainConfig` (``affectseq train frames`` on the CLI).
"""
