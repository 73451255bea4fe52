"""docs/synthetic.md documents every SynthConfig knob with its current default (so the two cannot drift)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affectseq.config import config_to_dict
from affectseq.data.synth import SynthConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "synthetic.md"


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def test_every_knob_is_documented_with_its_default() -> None:
    rows = {line.split("|")[1].strip(): line for line in DOC.read_text(encoding="utf-8").splitlines()
            if line.startswith("| `")}
    knobs = _leaves(config_to_dict(SynthConfig()))
    missing = sorted(f"`{k}`" for k in knobs if f"`{k}`" not in rows)
    assert not missing, f"knobs missing from {DOC.name}: {missing}"
    for key, default in knobs.items():
        assert f"`{str(default).replace(chr(39), '')}`" in rows[f"`{key}`"], f"{key}: default {default!r} not in {DOC.name}"
    assert "not a substitute for real data" in DOC.read_text(encoding="utf-8")
