"""One predict loop over many videos, with pluggable engines (as joblib's ``Parallel`` backends).

:func:`predict_batch` does what every engine shares, once: the model's causal check, the output
folder's writability check, its lock and session (:func:`~affectseq.predict.batch.output_session`),
planning each video (its folder, skip or redo: :func:`~affectseq.predict.batch.plan_batch`) and
recording outcomes (:class:`~affectseq.predict.batch.OutcomeRecorder`, in input order at the end),
then the batch-level writers (``clips.csv``). An engine only carries out the plans:

* ``local`` (:class:`LocalEngine`): this process, video after video;
* ``workers`` (``affectseq.scale.predict_shards.WorkersEngine``): N spawned processes;
* ``ray`` (``affectseq.scale.ray_engine.RayEngine``): Ray tasks over video shards.

All write the same folders and give the same exit codes. An engine is any object with
``bundle()`` (the model as the driver sees it), ``face_source_factory``/``aligner`` (custom face
stages, or None) and ``run(plans, options, output_options, record)``; :data:`PREDICT_ENGINES` names them
for ``affectseq predict --engine`` (:func:`create_engine`).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from affectseq.errors import ConfigError
from affectseq.predict.batch import (BatchReport, OutcomeRecorder, VideoOutcome, VideoPlan, check_output_root,
                                     collect_videos, expected_fingerprint, output_session, plan_batch,
                                     predict_plans, skipped_outcome)
from affectseq.predict.pipeline import PredictOptions
from affectseq.predict.stages import ModelBundle
from affectseq.predict.writers import OutputOptions, batch_writers

Plans = Sequence["VideoPlan | VideoOutcome"]


class PredictEngine(Protocol):
    """What carries out a batch's plans (see the module docstring)."""

    face_source_factory: Callable[[], Any] | None
    aligner: Callable[..., Any] | None

    def bundle(self) -> ModelBundle:
        """The model as the driver sees it: its info goes into each video's fingerprint."""

    def run(self, plans: Plans, options: PredictOptions, output_options: OutputOptions,
            record: OutcomeRecorder) -> None:
        """Give every plan an outcome through ``record`` (a VideoOutcome in ``plans`` is one already)."""


def known_outcomes(plans: Plans, record: OutcomeRecorder) -> list[VideoPlan]:
    """Record the outcomes known without predicting (unplaceable videos, skips); return the plans to predict.

    Engines that run videos out of order call it first, so skips are reported at once.
    """
    todo: list[VideoPlan] = []
    for plan in plans:
        if isinstance(plan, VideoOutcome):
            record([plan])
        elif plan.action == "skip":
            record([skipped_outcome(plan)])
        else:
            todo.append(plan)
    return todo


@dataclass
class LocalEngine:
    """This process, one video after the other, in input order; ``face_source_factory`` and ``aligner``
    replace the face stage (Python API)."""

    model: ModelBundle
    face_source_factory: Callable[[], Any] | None = None
    aligner: Callable[..., Any] | None = None

    @classmethod
    def from_request(cls, model: Any, **_: Any) -> "LocalEngine":
        """From a model request (``affectseq.scale.predict_shards.ModelRequest``): loaded here."""
        return cls(model.load())

    def bundle(self) -> ModelBundle:
        return self.model

    def run(self, plans: Plans, options: PredictOptions, output_options: OutputOptions,
            record: OutcomeRecorder) -> None:
        # Each video's files are written while the next one is predicted (predict_plans), in input order.
        predict_plans(plans, self.model, options, output_options, record, self.face_source_factory, self.aligner)


# Engines by name, imported when chosen (Ray only with --engine ray): "module:class", each with
# ``from_request(model_request, **settings)``.
PREDICT_ENGINES: dict[str, str] = {
    "local": "affectseq.predict.engines:LocalEngine",
    "workers": "affectseq.scale.predict_shards:WorkersEngine",
    "ray": "affectseq.scale.ray_engine:RayEngine",
}


def register_engine(name: str, target: str, *, replace: bool = False) -> None:
    """Make ``target`` (``"package.module:Class"``) the engine called ``name``; ConfigError when the name is
    taken (``replace=True`` swaps it)."""
    if name in PREDICT_ENGINES and not replace:
        raise ConfigError(f"a predict engine named {name!r} is already registered")
    PREDICT_ENGINES[name] = target


def create_engine(name: str, model: Any, **settings: Any) -> PredictEngine:
    """The engine ``name`` for a model request (``ModelRequest``); ``settings`` are the engine's own
    (``workers=N``, ``ray_options=...``); ConfigError naming the engines for an unknown one."""
    if name not in PREDICT_ENGINES:
        raise ConfigError(f"unknown predict engine {name!r}; choose one of {', '.join(PREDICT_ENGINES)}")
    module, _, cls = PREDICT_ENGINES[name].partition(":")
    return getattr(importlib.import_module(module), cls).from_request(model, **settings)


def predict_batch(
    inputs: Sequence[str | os.PathLike[str]],
    out_root: str | os.PathLike[str],
    engine: PredictEngine,
    options: PredictOptions = PredictOptions(),
    output_options: OutputOptions | None = None,
    *,
    overwrite: bool = False,
    on_outcome: Callable[[VideoOutcome], None] | None = None,
) -> BatchReport:
    """Predict every video in ``inputs`` into ``out_root`` with ``engine``; failures are recorded, not raised.

    ``on_outcome`` is called after each video (the CLI prints a line). Raises
    :class:`~affectseq.utils.lock.LockHeld` when another run writes into ``out_root``.
    """
    output_options = OutputOptions() if output_options is None else output_options
    bundle = engine.bundle()
    if options.mode == "causal" and not bundle.causal_ok:  # once, not once per video
        raise ConfigError(f"model {bundle.info.model_id} has a bidirectional temporal model: use --mode offline")
    root = Path(out_root)
    check_output_root(root)
    record = OutcomeRecorder(on_outcome)
    with output_session(root, "predict"):
        model_info = bundle.info.to_dict()

        def fingerprint_of(video: Path) -> dict[str, Any]:
            return expected_fingerprint(video, model_info, options, output_options, engine.face_source_factory,
                                        engine.aligner)

        plans = plan_batch(collect_videos(inputs), root, fingerprint_of, overwrite)
        engine.run(plans, options, output_options, record)
        finish_batch(record.report, plans, root)
    return record.report


def finish_batch(report: BatchReport, plans: Plans, out_root: Path) -> None:
    """Put the outcomes in input order (engines record them as they end) and run the batch-level writers."""
    position = {plan.video: i for i, plan in enumerate(plans)}
    report.outcomes.sort(key=lambda outcome: position.get(outcome.video, len(position)))
    for writer in batch_writers():
        path = writer.write(out_root, report.outcomes)
        if path is not None:
            report.files[writer.name] = Path(path)


def run_batch(
    inputs: Sequence[str | os.PathLike[str]],
    out_root: str | os.PathLike[str],
    bundle: ModelBundle,
    options: PredictOptions = PredictOptions(),
    output_options: OutputOptions | None = None,
    *,
    overwrite: bool = False,
    face_source_factory: Callable[[], Any] | None = None,
    aligner: Callable[..., Any] | None = None,
    on_outcome: Callable[[VideoOutcome], None] | None = None,
) -> BatchReport:
    """:func:`predict_batch` in this process with a loaded ``bundle`` (:class:`LocalEngine`).

    ``face_source_factory`` makes a fresh face source per video and ``aligner``
    replaces the alignment (defaults: the tracker from ``options``, ``align_face``).
    """
    return predict_batch(inputs, out_root, LocalEngine(bundle, face_source_factory, aligner), options,
                         output_options, overwrite=overwrite, on_outcome=on_outcome)
