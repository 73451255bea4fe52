"""The paper study in one call: (1) CNN alone vs. (2) CNN + RNN, each (a) unbalanced and (b) balanced.

``run_paper_study(data, out, config)`` trains, per task (VA and/or EXPR), two
frame CNNs (on all training frames, and on the balanced frames: the paper's VA
downsampling, or EXPR downsampling of majority classes), extracts each CNN's
features, trains a GRU on each feature store, and scores all rows on the
identical set of validation frames: those every model predicts (a
sequence-to-one RNN has no prediction for the first ``window`` frames of a
video; a frame CNN none for frames without a face crop). Outputs in ``out``::

    config.yaml, run.json      resolved study config, seed, version, git revision
    data/                      the generated dataset (--quick without --data)
    <task>_<variant>/          each arm's runs (see affectseq.experiments.arms)
    results.csv, results.md    the table (+ notes, links); printed as well
    confusions/                confusion matrices (counts, row-normalised) + per-class tables of every row

Validation frames select each model's best epoch and are also the frames scored
(as in the paper, whose test set was ABAW's validation set): the numbers are
optimistic in absolute terms but comparable across rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from affectseq.errors import ConfigError, InputError
from affectseq.evaluation.predictions import PREDICTIONS_FILE, Predictions, load_predictions
from affectseq.experiments import arms
from affectseq.experiments.alignment import align_predictions, score_aligned
from affectseq.experiments.results import format_for_terminal, minority_recall, write_confusions, write_results
from affectseq.experiments.study_config import StudyConfig

log = logging.getLogger(__name__)
ABAW_TASK = {"va": "VA", "expr": "EXPR"}


@dataclass
class StudyResult:
    """The scored tables (one DataFrame per task) and where the study wrote its outputs."""

    out_dir: Path
    tables: dict[str, pd.DataFrame]
    files: dict[str, Path]

    def summary(self) -> str:
        return format_for_terminal(self.tables)


def prepare_data(data: Path | None, out: Path, config: StudyConfig, quick: bool) -> Path:
    """The dataset to study: ``data``, or with ``quick`` and no data a generated one in ``out/data``."""
    if data is not None:
        if not Path(data).exists():
            raise InputError(data, "dataset not found")
        return Path(data)
    if not quick:
        raise ConfigError("--data is required (only --quick can generate its own small synthetic dataset)")
    from affectseq.config import load_config
    from affectseq.data.synth import SynthConfig, generate

    synth_cfg = load_config(SynthConfig, overrides={"seed": config.seed, **config.synth})
    target = out / "data"
    log.info("generating the quick synthetic dataset in %s", target)
    generate(target, synth_cfg, show_progress=False)
    return target


def dataset_splits(data: Path, task: str) -> tuple[str, str]:
    """(train, validation) split names of ``task`` in a video dataset with face crops (any registered layout)."""
    from affectseq.data.registry import open_dataset

    dataset = open_dataset(data)
    if not hasattr(dataset, "videos"):
        raise InputError(data, f"a {dataset.layout} dataset has no videos: the paper study needs video sequences")
    if ABAW_TASK[task] not in dataset.tasks:
        raise InputError(data, f"dataset has no {ABAW_TASK[task]} annotations (tasks: {', '.join(dataset.tasks)})")
    return arms._pick_splits(dataset.splits(ABAW_TASK[task]), data)


def row_name(model: str, variant: str, shuffled: bool = False) -> str:
    """Display name of a table row, e.g. ``CNN+RNN (b) balanced``."""
    letter = "a" if variant == "unbalanced" else "b"
    return f"{model}{' time-shuffled' if shuffled else ''} ({letter}) {variant}"


def run_task(data: Path, out: Path, config: StudyConfig, task: str) -> dict[str, Predictions]:
    """Train every arm of one task; return each row's validation predictions (shuffled rows mapped back)."""
    from affectseq.experiments.shuffle import load_permutations, unshuffle_predictions

    splits = dataset_splits(data, task)
    rows: dict[str, Predictions] = {}
    rnn_rows: dict[str, Predictions] = {}
    for variant in arms.VARIANTS:
        paths = arms.ArmPaths(out / f"{task}_{variant}")
        checkpoint = arms.train_cnn(data, config, task, variant, splits, paths)
        rows[row_name("CNN", variant)] = load_predictions(paths.cnn / PREDICTIONS_FILE)
        store = arms.extract_store(data, checkpoint, task, config, paths)
        rnn_dir = arms.train_rnn(config, task, store, paths.rnn())
        rnn_rows[row_name("CNN+RNN", variant)] = load_predictions(rnn_dir / PREDICTIONS_FILE)
        for arch in config.compare_archs:  # other temporal models on the very same store
            arch_dir = arms.train_rnn(config, task, store, paths.temporal(arch), arch=arch)
            rnn_rows[row_name(f"CNN+{arch.upper()}", variant)] = load_predictions(arch_dir / PREDICTIONS_FILE)
        if config.shuffle_time:
            shuffled = arms.shuffled_store(config, paths)
            shuffled_dir = arms.train_rnn(config, task, shuffled, paths.rnn(shuffled=True))
            preds = unshuffle_predictions(load_predictions(shuffled_dir / PREDICTIONS_FILE),
                                          load_permutations(shuffled))
            rnn_rows[row_name("CNN+RNN", variant, shuffled=True)] = preds
    return {**rows, **rnn_rows}


def at_clip_level(rows: dict[str, Predictions]) -> tuple[dict[str, Predictions], bool]:
    """On a clip dataset every row is scored per clip (CNN: its frame probabilities averaged over the clip's
    faces; a clip RNN: its one output): ``(rows, True)``; per-frame data: ``(rows, False)`` unchanged."""
    from affectseq.evaluation.clips import scored_clip_predictions

    if not any(p.label_level == "clip" for p in rows.values()):
        return rows, False
    return {name: scored_clip_predictions(p) for name, p in rows.items()}, True


def _task_notes(task: str, aligned: Any, table: pd.DataFrame, config: StudyConfig,
                clip_level: bool = False) -> list[str]:
    seq = config.sequence
    if clip_level:
        notes = [f"Clip dataset: all rows scored on the same {aligned.n_common} validation clips, one label each "
                 "(accuracy = WAR, uar = mean per-class recall): a CNN row's clip score is its class "
                 "probabilities averaged over the clip's faces; a CNN+RNN row's, its output over "
                 f"{seq.clip_frames} frames sampled uniformly over the clip. Rows per model before alignment: "
                 + ", ".join(f"{k}: {v}" for k, v in aligned.n_per_row.items()) + "."]
    else:
        notes = [f"All rows scored on the same {aligned.n_common} validation frames: those every model predicts "
                 f"({seq.mode}, window {seq.window}: the first frames of each video have no RNN prediction; "
                 "frames without a face crop have no CNN prediction). Frames predicted per row before alignment: "
                 + ", ".join(f"{k}: {v}" for k, v in aligned.n_per_row.items()) + "."]
    if task == "expr":
        notes.append(f"ABAW score = {table['abaw_formula'].iloc[0]}; macro_f1_chance = macro-F1 of the row's "
                     "predictions shuffled across frames (its chance level); minority_recall = mean recall of "
                     "the 3 rarest classes of these frames.")
        notes.append(f"Balanced CNN: EXPR {config.balance_expr} of the training frames.")
    else:
        notes.append("Balanced CNN: the paper's VA downsampling of the training frames (40x40 histogram, (0,0) "
                     "frames dropped, keep p = 1 - d/m; each axis looked up with its own bin edges).")
    return notes


def run_paper_study(data: str | Path | None, out: str | Path, config: StudyConfig, quick: bool = False,
                    command: str | None = None) -> StudyResult:
    """Run (or resume) the whole study and write its table; see the module docstring.

    ``config.threads`` sets torch's thread count for the study only; the caller's is restored after.
    """
    from affectseq.utils.threads import torch_threads

    with torch_threads(config.threads):
        return _run_study(data, Path(out), config, quick, command)


def _run_study(data: str | Path | None, out: Path, config: StudyConfig, quick: bool,
               command: str | None) -> StudyResult:
    from affectseq.utils.rundir import init_run_dir

    from affectseq.prepare.face_crops import crops_for_training

    init_run_dir(out, config, config.seed, command)
    data_path = prepare_data(Path(data) if data is not None else None, out, config, quick)
    data_path, face_stage = crops_for_training(data_path)  # raw videos or clips: their face crops, made or reused
    if face_stage:
        log.info("%s", face_stage)
    tables: dict[str, pd.DataFrame] = {}
    notes: dict[str, list[str]] = {}
    confusion_files: dict[str, Any] = {}
    for task in config.tasks:
        rows, clip_level = at_clip_level(run_task(data_path, out, config, task))
        aligned = align_predictions(rows, task)
        table = score_aligned(aligned, task)
        if task == "expr":
            recall = minority_recall(aligned, next(iter(aligned.rows.values())).num_classes)
            table["minority_recall"] = table["row"].map(recall)
        table.insert(1, "model", [r.split(" (")[0].replace(" time-shuffled", "") for r in table["row"]])
        table.insert(2, "balanced", ["balanced" in r and "unbalanced" not in r for r in table["row"]])
        table.insert(3, "time_shuffled", ["shuffled" in r for r in table["row"]])
        tables[task] = table
        notes[task] = _task_notes(task, aligned, table, config, clip_level)
        confusion_files[task] = write_confusions(aligned, out / "confusions", task)
    header = [f"Data: `{data_path}`; seed {config.seed}; frame encoder `{config.frame.encoder.name}`; "
              f"RNN {config.sequence.model.arch.upper()} {dict(config.sequence.model.args)} "
              f"({config.sequence.mode}, window {config.sequence.window})."]
    if command:
        header.append(f"Command: `{command}`")
    files = write_results(out, tables, notes, confusion_files, header)
    return StudyResult(out_dir=out, tables=tables, files=files)


__all__ = ["StudyResult", "run_paper_study", "run_task", "row_name"]
