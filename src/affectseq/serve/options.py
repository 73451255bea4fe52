"""Job options sent as form fields, checked once for the upload and the sample endpoints."""

from __future__ import annotations

from typing import Any, Mapping

from affectseq.predict.faces import DEFAULT_DETECT_EVERY

_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no", ""}
FIELDS = ("detect_every", "main_face_only", "smoothing_sec", "overlay")


class OptionError(ValueError):
    """A bad option value (answered with 422 and this message)."""


def _bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise OptionError(f"{name} must be true or false, got {text!r}")


def parse_options(fields: Mapping[str, str]) -> dict[str, Any]:
    """``{"detect_every", "main_face_only", "smoothing_sec", "overlay"}`` from form text, with defaults.

    ``smoothing_sec`` is ``None`` (the model's own window) unless given;
    ``overlay`` defaults to true because the page plays it. Unknown fields are
    refused so a misspelt option is not silently ignored.
    """
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise OptionError(f"unknown form field(s): {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    options: dict[str, Any] = {"detect_every": DEFAULT_DETECT_EVERY, "main_face_only": False,
                               "smoothing_sec": None, "overlay": True}
    if fields.get("detect_every", "").strip():
        try:
            options["detect_every"] = int(fields["detect_every"])
        except ValueError:
            raise OptionError(f"detect_every must be an integer, got {fields['detect_every']!r}") from None
        if not 1 <= options["detect_every"] <= 1000:
            raise OptionError("detect_every must be between 1 and 1000")
    if "main_face_only" in fields:
        options["main_face_only"] = _bool("main_face_only", fields["main_face_only"])
    if "overlay" in fields:
        options["overlay"] = _bool("overlay", fields["overlay"])
    if fields.get("smoothing_sec", "").strip():
        try:
            value = float(fields["smoothing_sec"])
        except ValueError:
            raise OptionError(f"smoothing_sec must be a number, got {fields['smoothing_sec']!r}") from None
        if not 0.0 <= value <= 60.0:  # also refuses nan
            raise OptionError("smoothing_sec must be between 0 and 60 seconds")
        options["smoothing_sec"] = value
    return options
