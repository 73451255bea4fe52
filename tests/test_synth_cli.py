"""``affectseq data synth`` end to end through the real command line (tiny sizes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectseq.cli import main
from affectseq.config import load_config
from affectseq.data.synth import SynthConfig


def test_cli_writes_a_dataset_with_flags_overrides_and_a_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synth"
    yaml_path = tmp_path / "cfg.yaml"
    yaml_path.write_text("n_frames: 50\nnuisance:\n  absent_frac: 0.2\n", encoding="utf-8")
    argv = ["data", "synth", str(out), "--videos", "2", "--frames", "12", "--seed", "3", "--config", str(yaml_path),
            "--workers", "1", "--no-progress", "--set", "write_videos=false", "--set", "annotation.va_decimals=2"]
    assert main(argv) == 0
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps lines
    assert "2 raw videos" in printed and "imbalance" in printed
    saved = load_config(SynthConfig, out / "synth_config.yaml")
    # --frames wins over the YAML; the YAML and --set still apply.
    assert (saved.n_videos, saved.n_frames, saved.seed) == (2, 12, 3)
    assert saved.nuisance.absent_frac == 0.2 and saved.write_videos is False and saved.annotation.va_decimals == 2
    va_files = sorted((out / "VA_Estimation_Challenge").rglob("*.txt"))
    assert va_files and len(va_files[0].read_text().splitlines()) == 13
    # Rerun: everything kept.
    assert main(argv) == 0
    assert "made 0, kept 2" in " ".join(capsys.readouterr().out.split())


def test_cli_reports_bad_settings_as_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", str(tmp_path / "x"), "--set", "nuisance.no_such_knob=1"]) == 1
    assert "no_such_knob" in capsys.readouterr().err
    assert main(["data", "synth", str(tmp_path / "y"), "--videos", "0"]) == 1
    assert "n_videos" in capsys.readouterr().err
