"""Warm start: initialise a new frame model from a trained one (``init_from`` in frame training).

The use case is moving a trained model to a new label space on the same faces,
e.g. the FER2013 default model (7 classes) to FER+ (the same 7 + Contempt): the
encoder is copied whole and every EXPR-head row whose class name both models
share is copied too, so only the new classes start from scratch. The source
model's data contract must match (encoder, input size, grayscale, framing):
otherwise its features would mean something else.
"""

from __future__ import annotations

import torch

from affectseq.errors import ConfigError
from affectseq.features.frame_model import FrameModel


def warm_start(model: FrameModel, source: str) -> str:
    """Copy ``source``'s encoder and shared head rows into ``model`` in place; returns what was copied.

    ``source`` is anything :func:`affectseq.models.factory.load_frame_model`
    accepts (a ``.safetensors`` file or ``"default"``; a run folder's best checkpoint).
    """
    from affectseq.models.factory import load_frame_model

    donor = load_frame_model(source)
    contract = ("name", "input_size", "in_chans", "grayscale", "framing", "feature_dim")
    differs = [k for k in contract if getattr(donor.spec, k) != getattr(model.spec, k)]
    if differs:
        pairs = ", ".join(f"{k} {getattr(donor.spec, k)!r} vs {getattr(model.spec, k)!r}" for k in differs)
        raise ConfigError(f"init_from={source}: its encoder differs from this run's ({pairs})")
    model.encoder.load_state_dict(donor.encoder.state_dict())
    copied = []
    with torch.no_grad():
        for task, head in model.heads.items():
            if task not in donor.heads:
                continue
            if task != "expr":
                head.load_state_dict(donor.heads[task].state_dict())
                copied.append(task)
                continue
            for row, name in enumerate(model.expr_classes):
                if name in donor.expr_classes:
                    src = donor.expr_classes.index(name)
                    head.weight[row] = donor.heads["expr"].weight[src]
                    head.bias[row] = donor.heads["expr"].bias[src]
                    copied.append(f"expr:{name}")
    return f"init_from {source}: encoder and {len(copied)} head rows/heads copied ({', '.join(copied) or 'none'})"
