"""The files ``predict`` writes for each video, as a list of writers: one writer per output file.

A writer has a name, a function that writes its file into the video's (temporary) output folder, the
files it may write with their media types (``serve`` offers them for download), and its own settings
(declared :class:`~affectseq.utils.params.Param`, e.g. ``overlay`` and ``keep_audio``). Everything else
follows from the list: :class:`OutputOptions` holds a value for every writer's settings (and records them
in the run fingerprint), ``predict``/``demo`` get their command-line options from it
(``affectseq.cli.options.add_output_options``), ``serve`` its result routes.

```python
from affectseq.predict.writers import OutputWriter, register_output

def write_faces_json(job):                      # job: OutputJob (video, out_dir, prediction, options, stride)
    (job.out_dir / "faces.json").write_text(job.prediction.table.to_json())

register_output(OutputWriter("faces_json", write_faces_json, files={"faces.json": "application/json"}))
```

``summary.json`` is always written last (it marks a finished folder), whatever is registered after it.
Built-in writers, in order: ``table`` (``frames.csv``/``frames.parquet``), ``timeline`` (``timeline.png``),
``overlay`` (``overlay.mp4``), ``summary`` (``summary.json``). A :class:`BatchWriter` writes one file for a
whole batch into the output root once every video has its outcome (built in: ``clips``, ``clips.csv`` of a
clip model's batch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from affectseq.errors import ConfigError
from affectseq.predict import outputs
from affectseq.utils.naming import display_name
from affectseq.utils.params import Boolean, OneOf, Param

SUMMARY_WRITER = "summary"  # written last: a folder with summary.json is complete


@dataclass(frozen=True)
class OutputJob:
    """What a writer gets: the source ``video`` (absolute path), the folder to write into, the prediction
    (``table``, ``summary``, ``classes``, ``has_va``), the output options and the frame stride used."""

    video: Path
    out_dir: Path
    prediction: Any
    options: "OutputOptions"
    stride: int = 1


@dataclass(frozen=True)
class OutputWriter:
    """One output file of a predicted video.

    ``write(job)`` writes into ``job.out_dir`` (each file atomically when it can: the folder is published
    only when every writer is done). ``files``: file name -> media type of what it may write. ``params``:
    its own settings; ``switch`` names the boolean one that turns it on (``None``: always written).
    """

    name: str
    write: Callable[[OutputJob], Any]
    files: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Param] = field(default_factory=dict)
    switch: str | None = None

    def enabled(self, options: "OutputOptions") -> bool:
        return self.switch is None or bool(getattr(options, self.switch))


_WRITERS: dict[str, OutputWriter] = {}


def register_output(writer: OutputWriter, *, replace: bool = False) -> OutputWriter:
    """Add ``writer`` to the list (after those registered before it; ``summary.json`` stays last).

    ConfigError when its name or one of its settings is taken (``replace=True`` swaps a writer of the same name).
    """
    if writer.name in _WRITERS and not replace:
        raise ConfigError(f"an output writer named {writer.name!r} is already registered")
    switch = writer.params.get(writer.switch) if writer.switch is not None else None
    if writer.switch is not None and (switch is None or not isinstance(switch.constraint, Boolean)):
        raise ConfigError(f"output writer {writer.name!r}: switch {writer.switch!r} must be one of its boolean params")
    taken = {name: w.name for w in _WRITERS.values() if w.name != writer.name for name in w.params}
    clash = sorted(set(writer.params) & set(taken))
    if clash:
        raise ConfigError(f"output writer {writer.name!r}: setting(s) {', '.join(clash)} already belong to "
                          f"{', '.join(sorted({taken[c] for c in clash}))}")
    _WRITERS[writer.name] = writer
    return writer


def unregister_output(name: str) -> None:
    """Remove a writer added by :func:`register_output` (tests, plug-ins that are switched off)."""
    _WRITERS.pop(name, None)


def output_writers() -> tuple[OutputWriter, ...]:
    """The registered writers in the order they write (``summary`` last)."""
    return tuple(sorted(_WRITERS.values(), key=lambda w: w.name == SUMMARY_WRITER))


def output_params(writers: tuple[OutputWriter, ...] | None = None) -> dict[str, Param]:
    """Every writer's settings by name, in writer order."""
    return {name: param for w in (output_writers() if writers is None else writers) for name, param in w.params.items()}


class OutputOptions:
    """Which files to write per video and how: a value for each setting of the writers registered when it
    is made (``OutputOptions(overlay=True, table_format="parquet")``), each checked by its declaration.

    It keeps those writers, so a worker process or Ray task writes exactly the files the driver planned.
    """

    __slots__ = ("_values", "_writers")

    def __init__(self, **values: Any) -> None:
        writers = output_writers()
        defaults = {name: param.default for name, param in output_params(writers).items()}
        resolved = _checked(writers, {**defaults, **values})  # in writer order, every value checked
        object.__setattr__(self, "_values", resolved)
        object.__setattr__(self, "_writers", writers)

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            try:
                return self._values[name]
            except KeyError:
                pass
        raise AttributeError(f"{type(self).__name__} has no setting {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("OutputOptions is immutable: use .replace(...)")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_options, (self._values, self._writers))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, OutputOptions) and self._values == other._values
                and [w.name for w in self._writers] == [w.name for w in other._writers])

    def __hash__(self) -> int:
        return hash((tuple(self._values.items()), tuple(w.name for w in self._writers)))

    def __repr__(self) -> str:
        return f"OutputOptions({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"

    @property
    def writers(self) -> tuple[OutputWriter, ...]:
        """The writers that run with these options, in order (``summary`` last)."""
        return tuple(w for w in self._writers if w.enabled(self))

    def values(self) -> dict[str, Any]:
        """Every setting and its value."""
        return dict(self._values)

    def replace(self, **changes: Any) -> "OutputOptions":
        """A copy with some settings changed (checked again)."""
        return _restore_options({**self._values, **_checked(self._writers, changes)}, self._writers)

    def fingerprint(self) -> dict[str, Any]:
        """The output choices recorded in the run fingerprint (every setting that changes what is written)."""
        params = output_params(self._writers)
        return {name: value for name, value in self._values.items() if params[name].fingerprint}


def _checked(writers: tuple[OutputWriter, ...], values: Mapping[str, Any]) -> dict[str, Any]:
    params = output_params(writers)
    unknown = sorted(set(values) - set(params))
    if unknown:
        raise ConfigError(f"unknown output setting(s) {', '.join(unknown)}; known: {', '.join(params)}")
    return {name: params[name].check(name, value) for name, value in values.items()}


def _restore_options(values: dict[str, Any], writers: tuple[OutputWriter, ...]) -> OutputOptions:
    options = OutputOptions.__new__(OutputOptions)
    object.__setattr__(options, "_values", dict(values))
    object.__setattr__(options, "_writers", tuple(writers))
    return options


def write_outputs(video: Path, out_dir: Path, prediction: Any, options: OutputOptions,
                  stride: int = 1) -> dict[str, float]:
    """Run each enabled writer into ``out_dir`` (created); seconds per writer as ``{name}_sec``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    job = OutputJob(Path(video), Path(out_dir), prediction, options, stride)
    seconds: dict[str, float] = {}
    for writer in options.writers:
        start = time.perf_counter()
        writer.write(job)
        seconds[f"{writer.name}_sec"] = time.perf_counter() - start
    return seconds


@dataclass(frozen=True)
class BatchWriter:
    """One file for a whole batch, in the output root (``clips.csv``): ``write(out_root, outcomes)`` runs once
    every video has its outcome (in input order), while the batch still holds the folder's lock; it returns the
    file written, or None when it has nothing to write for this batch."""

    name: str
    write: Callable[[Path, Sequence[Any]], "Path | None"]


_BATCH_WRITERS: dict[str, BatchWriter] = {}


def register_batch_output(writer: BatchWriter, *, replace: bool = False) -> BatchWriter:
    """Add a batch-level writer (after those registered before it); ConfigError when its name is taken."""
    if writer.name in _BATCH_WRITERS and not replace:
        raise ConfigError(f"a batch output writer named {writer.name!r} is already registered")
    _BATCH_WRITERS[writer.name] = writer
    return writer


def unregister_batch_output(name: str) -> None:
    """Remove a batch-level writer added by :func:`register_batch_output`."""
    _BATCH_WRITERS.pop(name, None)


def batch_writers() -> tuple[BatchWriter, ...]:
    """The registered batch-level writers, in order."""
    return tuple(_BATCH_WRITERS.values())


# -- the built-in writers ------------------------------------------------------------------------------------------
def _write_table(job: OutputJob) -> None:
    outputs.write_frames_table(job.prediction.table, job.out_dir, job.options.table_format)


def _write_timeline(job: OutputJob) -> None:
    from affectseq.predict.timeline import draw_timeline

    p = job.prediction
    draw_timeline(p.table, p.classes, job.out_dir / outputs.TIMELINE_FILE, title=display_name(job.video.name),
                  summary=p.summary, has_va=p.has_va)


def _write_overlay(job: OutputJob) -> None:
    from affectseq.predict.overlay import write_overlay

    p = job.prediction
    write_overlay(job.video, p.table, p.classes, job.out_dir / outputs.OVERLAY_FILE, has_va=p.has_va,
                  keep_audio=job.options.keep_audio, stride=job.stride)


def _write_summary(job: OutputJob) -> None:
    outputs.write_summary(job.prediction.summary, job.out_dir)


register_output(OutputWriter(
    "table", _write_table,
    files={outputs.FRAMES_FILES["csv"]: "text/csv", outputs.FRAMES_FILES["parquet"]: "application/vnd.apache.parquet"},
    params={"table_format": Param("csv", OneOf(tuple(outputs.FRAMES_FILES)), "frames table format (default %(default)s)",
                                  flag="--format")}))
register_output(OutputWriter(
    "timeline", _write_timeline, files={outputs.TIMELINE_FILE: "image/png"}, switch="timeline",
    params={"timeline": Param(True, Boolean(), "write timeline.png, the expressions over time")}))
register_output(OutputWriter(
    "overlay", _write_overlay, files={outputs.OVERLAY_FILE: "video/mp4"}, switch="overlay",
    params={"overlay": Param(False, Boolean(), "write overlay.mp4, the video annotated with faces and expressions"),
            "keep_audio": Param(False, Boolean(), "keep the original audio in the overlay video")}))
register_output(OutputWriter(SUMMARY_WRITER, _write_summary, files={outputs.SUMMARY_FILE: "application/json"}))


def _write_clips_csv(out_root: Path, outcomes: Sequence[Any]) -> Path | None:
    from affectseq.predict.clip import write_clips_csv  # clip models only: loaded when a batch ends

    return write_clips_csv(out_root, outcomes)


register_batch_output(BatchWriter("clips", _write_clips_csv))
