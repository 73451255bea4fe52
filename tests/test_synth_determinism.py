"""Same seed -> identical files (serial or parallel); resume after a kill; no half-written video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectseq.config import load_config
from affectseq.data.synth import SynthConfig, generate
from affectseq.data.synth import video as synth_video
from affectseq.errors import ConfigError

SMALL = dict(n_videos=3, n_frames=16, seed=11, two_person_fraction=0.34, write_videos=False)


def _files(root: Path, patterns: tuple[str, ...] = ("*.txt", "*.jpg")) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for pattern in patterns for p in sorted(root.rglob(pattern))}


def test_same_seed_gives_identical_files_serial_or_parallel_and_other_seed_differs(tmp_path: Path) -> None:
    cfg = load_config(SynthConfig, overrides=SMALL)
    generate(tmp_path / "a", cfg, workers=1, show_progress=False)
    generate(tmp_path / "b", cfg, workers=2, show_progress=False)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert any(k.endswith(".jpg") for k in a) and any(k.endswith(".txt") for k in a)
    assert a == b
    with np.load(next((tmp_path / "a" / "ground_truth").glob("*.npz"))) as ga:
        with np.load(tmp_path / "b" / "ground_truth" / Path(ga.fid.name).name) as gb:
            for key in ("geometry_observed", "va", "expr", "box"):
                np.testing.assert_array_equal(ga[key], gb[key])

    other = load_config(SynthConfig, overrides={**SMALL, "seed": 12, "write_crops": False})
    generate(tmp_path / "c", other, workers=1, show_progress=False)
    c = _files(tmp_path / "c", ("*.txt",))
    assert c.keys() != {k for k in a if k.endswith(".txt")} or any(c[k] != a[k] for k in c)


def test_rerun_resumes_only_unfinished_videos_and_rejects_another_config(tmp_path: Path) -> None:
    cfg = load_config(SynthConfig, overrides=SMALL)
    out = tmp_path / "set"
    first = generate(out, cfg, workers=1, show_progress=False)
    reference = _files(out)
    # Simulate a run killed while committing one video: its ground truth (the done marker) and a crop
    # are missing and a staging folder is left behind.
    victim = sorted((out / "ground_truth").glob("*.npz"))[0]
    victim.unlink()
    next((out / "cropped_aligned" / victim.stem).glob("*.jpg")).unlink()
    (out / ".synth_tmp" / "junk").mkdir(parents=True)
    again = generate(out, cfg, workers=1, show_progress=False)
    assert again.generated == 1 and again.skipped == first.raw_videos - 1
    assert _files(out) == reference
    assert again.expr_counts == first.expr_counts
    with pytest.raises(ConfigError, match="different synthetic config"):
        generate(out, load_config(SynthConfig, overrides={**SMALL, "n_frames": 17}), workers=1, show_progress=False)


def test_a_failing_video_leaves_none_of_its_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(SynthConfig, overrides={**SMALL, "n_videos": 1, "two_person_fraction": 0.0})

    def broken(*args: object) -> str:
        raise RuntimeError("simulated crash while writing annotations")

    monkeypatch.setattr(synth_video, "format_au", broken)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate(tmp_path, cfg, workers=1, show_progress=False)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["synth_config.yaml"], left
