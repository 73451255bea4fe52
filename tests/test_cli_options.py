"""Each command declares its own options: ``--help`` shows them all, and no module edits another's parser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from affectseq.cli import build_parser

CLI_DIR = Path(__file__).resolve().parents[1] / "src" / "affectseq" / "cli"


@pytest.mark.parametrize("command", ["predict", "extract"])
def test_help_lists_engine_and_workers(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--engine", "--workers", "--ray-address"):
        assert option in text, f"'affectseq {command} --help' does not list {option}"


def test_cli_modules_never_touch_parser_internals() -> None:
    """``parser._actions`` edits hid options from a command's own module; shared groups are functions now."""
    offenders = [f"{path.name}:{n}" for path in sorted(CLI_DIR.glob("*.py"))
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"\._(actions|option_string_actions|action_groups)\b", line)]
    assert not offenders, f"argparse internals used in cli/: {offenders}"


def test_cli_never_skips_a_missing_module_of_ours() -> None:
    """A missing command module is a bug to see, not a command to drop silently from ``--help``."""
    offenders = [path.name for path in sorted(CLI_DIR.glob("*.py"))
                 if re.search(r"find_spec\(\s*['\"]affectseq|not built yet", path.read_text(encoding="utf-8"))]
    assert not offenders, f"silent module skips in cli/: {offenders}"
