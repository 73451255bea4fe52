"""affectseq.experiments stage: reproducible studies.

The paper study (``affectseq experiment paper``): :func:`affectseq.experiments.paper.run_paper_study`
with a :class:`affectseq.experiments.study_config.StudyConfig` (``load_study_config``). Building blocks:
``arms`` (train CNN -> extract -> train RNN, resumable), ``alignment`` (score rows on identical
frames, chance level), ``shuffle`` (time-shuffled store for the negative control), ``results`` (tables,
confusion matrices) and ``aggregate`` (mean +- std over seeds).
"""
