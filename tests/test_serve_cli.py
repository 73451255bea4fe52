"""``affectseq serve`` on the command line: options, the printed URL, the warning, one-line errors."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra: pip install -e '.[serve]'")

from affectseq.cli import main  # noqa: E402
from affectseq.cli.serve import LOOPBACK_NAMES, default_data_dir  # noqa: E402


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Run the handler up to the point where uvicorn would serve; record the app and socket."""
    seen: dict = {}

    def fake_run(self, sockets=None):
        seen["app"], seen["port"] = self.config.app, sockets[0].getsockname()[1]
        for sock in sockets:
            sock.close()

    monkeypatch.setattr("uvicorn.Server.run", fake_run)
    monkeypatch.setattr("affectseq.serve.runner.PredictRunner.bundle", lambda self, s=None: None)
    return seen


def test_help_lists_the_options(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--data-dir", "--model", "--max-upload-mb", "--jobs"):
        assert option in out


def test_default_data_dir_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "affectseq" / "serve"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_data_dir() == Path.home() / ".local" / "share" / "affectseq" / "serve"


def test_localhost_by_default_prints_the_url(no_serving: dict, tmp_path: Path, capsys) -> None:
    assert main(["serve", "--port", "0", "--data-dir", str(tmp_path / "d")]) == 0
    out, err = capsys.readouterr()
    assert f"open http://127.0.0.1:{no_serving['port']}/" in out and "WARNING" not in err
    assert no_serving["port"] != 0
    config = no_serving["app"].state.config
    assert config.allowed_hosts == LOOPBACK_NAMES and config.jobs == 1
    assert config.max_upload_bytes == 2048 * 2**20 and config.data_dir == (tmp_path / "d").resolve()


def test_all_interfaces_warns_there_is_no_authentication(no_serving: dict, tmp_path: Path, capsys) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path),
                 "--jobs", "3", "--max-upload-mb", "10"]) == 0
    out, err = capsys.readouterr()
    assert "WARNING" in err and "no authentication" in err
    assert "open http://localhost:" in out
    config = no_serving["app"].state.config
    assert config.allowed_hosts is None and config.jobs == 3 and config.max_upload_bytes == 10 * 2**20


def test_a_taken_port_is_a_one_line_error(no_serving: dict, tmp_path: Path, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"affectseq: error: cannot listen on 127.0.0.1:{port}")


def test_bad_values_and_missing_extra_are_one_line_errors(no_serving: dict, tmp_path: Path, capsys,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["serve", "--jobs", "0", "--data-dir", str(tmp_path)]) == 1
    assert "--jobs" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve", "--data-dir", str(tmp_path)]) == 1
    assert "pip install 'affectseq[serve]'" in capsys.readouterr().err


def test_a_bad_model_fails_before_serving(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.safetensors"
    assert main(["serve", "--model", str(missing), "--data-dir", str(tmp_path), "--port", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.safetensors" in err[0]


@pytest.mark.parametrize("args, named", [(["--jobs", "0"], "--jobs"), (["--live-sessions", "0"], "--live-sessions"),
                                         (["--max-upload-mb", "0"], "--max-upload-mb")])
def test_a_bad_size_names_its_own_option(no_serving: dict, tmp_path: Path, capsys, args, named) -> None:
    """Before, any of the three gave one message naming all three."""
    assert main(["serve", "--port", "0", "--data-dir", str(tmp_path), *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and named in err
    others = {"--jobs", "--live-sessions", "--max-upload-mb"} - {named}
    assert not others & set(err.replace(",", " ").split()), err
