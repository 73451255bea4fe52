"""Fast checks of the scale-out plumbing: shard balancing, engine options and dispatch in the CLI."""

from __future__ import annotations

import argparse

import pytest

from affectseq.scale.shards import balanced_shards, default_shard_count


def test_balanced_shards_keep_whole_items_and_balance_cost() -> None:
    items = list("abcdefg")
    costs = [10, 1, 1, 1, 7, 3, 3]
    shards = balanced_shards(items, costs, 3)
    assert sorted(x for s in shards for x in s) == items  # every video exactly once
    totals = sorted(sum(costs[items.index(x)] for x in s) for s in shards)
    assert totals == [8, 8, 10]  # longest first: {a}, {e, c}, {f, g, b, d}; no split does better than 10
    assert all(s == sorted(s, key=items.index) for s in shards)  # input order inside a shard
    assert balanced_shards(items, costs, 3) == shards  # deterministic
    assert balanced_shards(["x"], [1], 5) == [["x"]] and balanced_shards([], [], 2) == []
    with pytest.raises(ValueError):
        balanced_shards(items, costs[:-1], 2)


def test_default_shard_count() -> None:
    assert default_shard_count(100, 4) == 8 and default_shard_count(3, 4) == 3 and default_shard_count(0, 2) == 1


def _parser() -> argparse.ArgumentParser:
    from affectseq.cli import extract, predict, scale

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    extract.register(sub)
    predict.register(sub)
    scale.register(sub)
    return parser


def test_engine_options_dispatch_to_local_or_scaled_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    from affectseq.cli import extract, predict

    calls = []
    monkeypatch.setattr(extract, "run", lambda args: calls.append("extract-local") or 0)
    monkeypatch.setattr(predict, "run", lambda args: calls.append(f"predict-{predict.engine_name(args)}") or 0)
    monkeypatch.setattr(extract, "run_ray", lambda args: calls.append("extract-ray") or 0)
    parser = _parser()
    base = ["extract", "--data", "d", "--checkpoint", "c", "--out", "o"]
    for argv in (base, base + ["--engine", "ray", "--ray-address", "auto"], ["predict", "v.mp4"],
                 ["predict", "v.mp4", "--workers", "2"], ["predict", "v.mp4", "--engine", "ray"]):
        args = parser.parse_args(argv)
        assert args.handler(args) == 0
    assert calls == ["extract-local", "extract-ray", "predict-local", "predict-workers", "predict-ray"]
    args = parser.parse_args(base + ["--engine", "ray", "--ray-address", "auto"])
    assert args.ray_address == "auto" and args.ray_gpus_per_task == 0.0


def test_scale_train_sequence_parses_overrides() -> None:
    args = _parser().parse_args(["scale", "train-sequence", "--store", "s", "--out", "r", "--nproc", "2",
                                 "epochs=1", "batch_size=8"])
    assert (args.nproc, args.backend, args.overrides) == (2, "auto", ["epochs=1", "batch_size=8"])


@pytest.mark.parametrize("bad, named", [({"ray_cpus_per_task": 0.0}, "--ray-cpus-per-task"),
                                        ({"ray_gpus_per_task": -1.0}, "--ray-gpus-per-task"),
                                        ({"ray_shards": 0}, "--ray-shards")])
def test_a_bad_ray_option_is_named_alone(bad: dict, named: str) -> None:
    """Before, any of the three gave one message naming all three, and ``--ray-shards 0`` passed as the default."""
    from affectseq.cli.options import ray_options
    from affectseq.errors import ConfigError

    args = argparse.Namespace(ray_address=None, ray_cpus_per_task=1.0, ray_gpus_per_task=0.0, ray_shards=None)
    vars(args).update(bad)
    with pytest.raises(ConfigError) as err:
        ray_options(args)
    others = {"--ray-cpus-per-task", "--ray-gpus-per-task", "--ray-shards"} - {named}
    assert named in str(err.value) and not any(o in str(err.value) for o in others), str(err.value)


def test_predict_workers_below_one_is_refused() -> None:
    """Before, ``--workers 0`` (or -2) silently ran in this process as if it were 1."""
    from affectseq.cli.predict import engine_name
    from affectseq.errors import ConfigError

    args = _parser().parse_args(["predict", "v.mp4", "--workers", "0"])
    with pytest.raises(ConfigError, match="--workers must be >= 1, got 0"):
        engine_name(args)
