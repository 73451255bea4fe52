"""The bundled sample clip (``examples/sample.mp4``: "Video by Wolfgang Langer, Pexels") used by ``affectseq demo``.

Found both in a source checkout (``examples/sample.mp4``) and in an installed
package (package data ``affectseq/predict/assets/sample.mp4``, a link to the same
file in the repository that the wheel build turns into a copy).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from affectseq.errors import InputError

SAMPLE_ATTRIBUTION = "Video by Wolfgang Langer, Pexels"
# A real MP4 is ~1.6 MB; a checkout without symlink support leaves a tiny text file in its place.
_MIN_BYTES = 10_000


def sample_video_path() -> Path:
    """Path of the bundled sample video; InputError listing where it was looked for when missing."""
    candidates = [
        Path(str(resources.files("affectseq.predict") / "assets" / "sample.mp4")),
        Path(__file__).resolve().parents[3] / "examples" / "sample.mp4",  # source checkout
    ]
    for path in candidates:
        if path.is_file() and path.stat().st_size >= _MIN_BYTES:
            return path
    raise InputError(candidates[-1], "bundled sample video not found (looked in: "
                     + ", ".join(str(p) for p in candidates) + ")")
