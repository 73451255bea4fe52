"""affectseq.evaluation stage: metrics, figures and reports for run directories.

``evaluate_run(run_dir)`` reads ``val_predictions.npz`` (+ ``history.csv``,
``run.json``) and writes ``metrics.json``, confusion matrices, per-class tables,
VA plots, training curves and ``report.md``. Every number comes from
:mod:`affectseq.metrics`.
"""
