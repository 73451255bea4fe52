"""Job options sent as form fields, checked once for the upload and the sample endpoints.

Each field is a declared setting (:mod:`affectseq.utils.params`): the face settings come from
:mod:`affectseq.faces.settings` (the same ranges as the command line), so the form, the API schema
(:func:`form_schema`) and ``predict`` agree.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from affectseq.errors import SettingError
from affectseq.faces.settings import FACE_PARAMS
from affectseq.predict.writers import output_params
from affectseq.utils.params import Boolean, Interval, Param

FORM_PARAMS: dict[str, Param] = {
    "detect_every": FACE_PARAMS["detect_every"],
    "main_face_only": FACE_PARAMS["main_face_only"],
    "smoothing_sec": Param(None, Interval(float, 0.0, 60.0), "smoothing window in seconds (default: the model's)",
                           nullable=True),
    "tta_flip": Param(False, Boolean(), "average each face with its mirror image (slower, a little more accurate)"),
    # The overlay writer's switch; the page plays the overlay, so a job writes it unless told not to.
    "overlay": dataclasses.replace(output_params()["overlay"], default=True),
}
FIELDS = tuple(FORM_PARAMS)


class OptionError(ValueError):
    """A bad option value (answered with 422 and this message)."""


def parse_options(fields: Mapping[str, str]) -> dict[str, Any]:
    """``{"detect_every", "main_face_only", "smoothing_sec", "tta_flip", "overlay"}`` from form text, with defaults.

    ``smoothing_sec`` is ``None`` (the model's own window) unless given; an empty field
    keeps the default (false for a yes/no field). Unknown fields are refused so a misspelt option is
    not silently ignored.
    """
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise OptionError(f"unknown form field(s): {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    options: dict[str, Any] = {name: param.default for name, param in FORM_PARAMS.items()}
    for name, param in FORM_PARAMS.items():
        text = fields.get(name, "")
        if not text.strip():
            if name in fields and isinstance(param.constraint, Boolean):
                options[name] = False  # an empty checkbox value
            continue
        try:
            options[name] = param.parse(name, text)
        except SettingError as err:
            raise OptionError(str(err)) from None
    return options


def form_schema() -> dict[str, Any]:
    """The JSON schema of each form field (the API docs' upload body)."""
    return {name: param.json_schema() for name, param in FORM_PARAMS.items()}
