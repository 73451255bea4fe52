"""Typed configs: defaults < YAML file < key=value overrides, with errors that name the bad option."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from affectseq.config import config_to_dict, load_config, merge_mappings, parse_overrides
from affectseq.utils.rundir import save_config
from affectseq.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    hidden_sizes: tuple[int, ...] = (100, 100, 50)
    cell: Literal["gru", "lstm"] = "gru"


@dataclass(frozen=True)
class Outer:
    lr: float = 0.001
    epochs: int = 10
    name: str = "run"
    shuffle: bool = True
    max_minutes: float | None = None
    model: Inner = field(default_factory=Inner)


def test_defaults_then_yaml_then_overrides(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.01\nmodel:\n  cell: lstm\n")
    config = load_config(Outer, path, ["epochs=3", "model.hidden_sizes=[8, 4]", "max_minutes=2.5"])
    assert config == Outer(lr=0.01, epochs=3, max_minutes=2.5, model=Inner(hidden_sizes=(8, 4), cell="lstm"))
    assert load_config(Outer) == Outer()


def test_ints_are_accepted_for_floats_but_not_the_reverse() -> None:
    assert load_config(Outer, overrides=["lr=1"]).lr == 1.0
    with pytest.raises(ConfigError, match="epochs must be an integer"):
        load_config(Outer, overrides=["epochs=1.5"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("epoch=3", "unknown option.*epoch.*valid: lr, epochs"),
        ("model.cel=gru", "unknown option.*model.cel"),
        ("model.cell=rnn", "model.cell='rnn'; choose one of 'gru', 'lstm'"),
        ("shuffle=maybe", "shuffle must be true or false"),
        ("epochs", "not of the form key=value"),
    ],
)
def test_bad_options_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(Outer, overrides=[override])


def test_bad_files_name_the_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        load_config(Outer, tmp_path / "missing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml: a config file must hold a mapping"):
        load_config(Outer, listing)


def test_saved_config_loads_back_to_the_same_object(tmp_path) -> None:
    config = load_config(Outer, overrides=["model.hidden_sizes=[16]", "name=x"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(Outer, tmp_path / "config.yaml") == config
    assert config_to_dict(config)["model"] == {"hidden_sizes": [16], "cell": "gru"}


def test_override_parsing_and_deep_merge() -> None:
    assert parse_overrides(["a.b=1", "a.c=[1, 2]", "d=text"]) == {"a": {"b": 1, "c": [1, 2]}, "d": "text"}
    assert merge_mappings({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}
