"""One rule for an exception as one line (``affectseq.errors.first_line``), used wherever a failure is reported."""

from __future__ import annotations

from pathlib import Path

from affectseq.errors import first_line
from affectseq.predict.batch import describe_failure


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_first_line_is_the_first_non_blank_line() -> None:
    assert first_line(ValueError("\n  bad value\nmore")) == "bad value"
    assert first_line(ValueError("")) == ""
    assert first_line(Unprintable()) == ""


def test_a_message_starting_with_a_newline_is_not_reported_empty() -> None:
    """Before, ``serve``'s job error and the ONNX fallback warning took ``str(err).splitlines()[0]``: ``""`` here."""
    from affectseq.serve import jobs

    err = RuntimeError("\nCUDA out of memory")
    assert jobs.job_error(err) == "CUDA out of memory"
    assert jobs.job_error(KeyError()) == "KeyError"
    assert describe_failure(Path("v.mp4"), err) == "v.mp4: RuntimeError: CUDA out of memory"
