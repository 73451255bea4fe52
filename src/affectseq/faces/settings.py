"""The face and detection settings, declared once: ``detector``, ``detect_every``, ``main_face_only``.

:data:`FACE_PARAMS` holds each setting's default, constraint and help; this module is the only place
that checks them. ``predict`` (``PredictOptions``), ``data faces`` and extraction (``CropOptions``), the
CLI (``affectseq.cli.options.add_face_options``), the Python API, ``serve``'s form and live prediction
all take them from here, so every entry point accepts the same values and records the same fingerprint.

```python
settings = FaceSettings(detect_every=4)      # SettingError (a ConfigError and ValueError) when out of range
settings.fingerprint()                       # {"detector": "mtcnn", "detect_every": 4, "main_face_only": False}
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from affectseq.faces.detector import DEFAULT_DETECTOR, available_detectors
from affectseq.utils.params import Boolean, Interval, OneOf, Param, params_fingerprint, validate_params

# Detect every 8th frame by default (the tracker's accuracy is measured at it): at 24-30 fps faces move a few
# pixels between detections, which the tracker follows, and full detection is the costliest stage.
DEFAULT_DETECT_EVERY = 8
MAX_DETECT_EVERY = 1000  # beyond it a video is detected on its first frame and scene cuts only

FACE_PARAMS: dict[str, Param] = {
    "detector": Param(DEFAULT_DETECTOR, OneOf(available_detectors, fold_case=True),
                      "face detector backend: mtcnn or haar (default %(default)s)"),
    "detect_every": Param(DEFAULT_DETECT_EVERY, Interval(int, 1, MAX_DETECT_EVERY),
                          "run the face detector every K frames and track in between (default %(default)s)"),
    "main_face_only": Param(False, Boolean(),
                            "keep only the main face: the one with the largest accumulated area, while it is on "
                            "screen; when it leaves, the largest remaining face takes over"),
}


def check_face_setting(name: str, value: Any) -> Any:
    """``value`` when it is a valid face setting ``name``; SettingError naming it otherwise."""
    return FACE_PARAMS[name].check(name, value)


@dataclass(frozen=True)
class FaceSettings:
    """How faces are found: the detector backend, the detection interval and the main-face rule."""

    PARAMS: ClassVar[dict[str, Param]] = FACE_PARAMS

    detector: str = DEFAULT_DETECTOR
    detect_every: int = DEFAULT_DETECT_EVERY
    main_face_only: bool = False

    def __post_init__(self) -> None:
        validate_params(self)

    def fingerprint(self) -> dict[str, Any]:
        """The settings as recorded beside results (every one of them changes which faces are found)."""
        return params_fingerprint(self)
