"""affectseq.data stage: dataset adapters, inspection, synthetic generator, balancing.

* :mod:`affectseq.data.frames` — the ``FrameSet`` protocol and its two concrete sets;
* :mod:`affectseq.data.images` — ``load_fer2013``, ``load_image_folder`` (AffectNet/RAF-DB style);
* :mod:`affectseq.data.abaw` — ``AbawDataset`` for every Aff-Wild2/ABAW layout;
* :mod:`affectseq.data.video_csv` — users' own videos with per-frame CSV labels;
* :mod:`affectseq.data.inspect` — per-task/split statistics behind ``affectseq data inspect``.

Submodules are imported explicitly (no re-exports here) so importing one
adapter never pulls in the others' dependencies.
"""
