"""Stage 7, training: the one training engine (``fit``) and its two tasks, losses, augmentations, scoring.

Frame training: :func:`affectseq.training.frames.train_frames` with a
:class:`~affectseq.training.frames.FrameTrainConfig` (``affectseq train frames`` on the CLI); sequence
training: :func:`affectseq.training.sequence.train_sequence` (``affectseq train sequence``). Both are
:func:`affectseq.training.fit.fit` of a task (:mod:`~affectseq.training.frame_task`,
:class:`~affectseq.training.sequence.SequenceTask`).
"""
