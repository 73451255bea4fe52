"""The data contract of a frame encoder, :class:`EncoderSpec`, and the names it may take (no torch).

Every checkpoint and feature store carries one; :mod:`affectseq.features.encoders` builds
the networks from it. It lives apart from the networks so that readers of a model file's
header (``predict`` on ONNX Runtime) never import torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from affectseq.modelfile.schema import FRAMINGS, SPEC_OPTIONS  # noqa: F401 (re-exported)

IMAGENET_MEAN: tuple[float, ...] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, ...] = (0.229, 0.224, 0.225)

# FRAMINGS -- how a face crop is framed (see affectseq.features.preprocess.FRAMING_CROPS):
#  "abaw112" -- Aff-Wild2 ``cropped_aligned``-like five-point alignment (what affectseq.faces produces);
#  "fer2013" -- FER2013's tighter, centred 48x48 faces;
#  "as_given" -- whatever the training images were (no conversion is possible).
# SPEC_OPTIONS -- the constructor options an EncoderSpec may carry, with their types: the whitelist applied
# when a spec comes from a file. ``init_weights`` (a path to read) and ``pretrained_online`` (a download) are
# deliberately absent: only a caller can ask for them. Both are defined by the model-file schema, which checks
# them in every header and imports nothing of the features stage (features imports modelfile, never the reverse).


@dataclass(frozen=True)
class EncoderSpec:
    """The data contract of a frame encoder (saved in every checkpoint and feature store).

    ``grayscale`` means RGB faces are converted to luma first (and repeated to
    ``in_chans`` channels); pixels are scaled to [0, 1], then ``(x - mean) / std``
    per channel. ``framing`` names the crop framing the encoder was trained on.
    ``options`` holds the constructor arguments needed to rebuild the module.
    """

    name: str
    input_size: int
    in_chans: int
    grayscale: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    feature_dim: int
    framing: str = "abaw112"
    options: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (options as a mapping)."""
        out = dataclasses.asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        out["options"] = dict(self.options)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EncoderSpec":
        """Inverse of :meth:`to_dict`; unknown keys are an error (a newer format)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown EncoderSpec fields {sorted(unknown)}")
        values = dict(data)
        values["mean"] = tuple(float(v) for v in values["mean"])
        values["std"] = tuple(float(v) for v in values["std"])
        values["options"] = tuple(sorted(dict(values.get("options", {})).items()))
        return cls(**values)
