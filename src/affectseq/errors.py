"""Exceptions with messages users can act on: each names the file and the problem."""

from __future__ import annotations

import os


class AffectseqError(Exception):
    """Base class for errors shown to the user as one line (the CLI prints ``str(err)``)."""


class InputError(AffectseqError):
    """An input file is missing, unreadable or malformed.

    ``InputError(path, "not a video")`` reads ``"<path>: not a video"``; ``line``
    (1-based) is added when the problem is at a known line of a text file.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, line: int | None = None):
        self.path = os.fspath(path)
        self.problem = problem
        self.line = line
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {problem}")


class ConfigError(AffectseqError):
    """A configuration value or option is invalid."""


class SettingError(ConfigError, ValueError):
    """A declared setting (``affectseq.utils.params``) out of its range or choices; also a ``ValueError``,
    as the face tracker's own checks were."""


def first_line(err: BaseException) -> str:
    """The first non-blank line of ``str(err)``, stripped; ``""`` when there is none (or ``str`` itself fails).

    The one rule for reporting an exception in one line: callers add what is missing
    (``first_line(err) or type(err).__name__``).
    """
    try:
        text = str(err)
    except Exception:  # noqa: BLE001 -- an exception whose __str__ fails is still reported
        return ""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
