"""DDP with 2 CPU processes (gloo): same steps as one process; the sampler's sharding; only rank 0 writes.

Time budget: < 90 s on 2 shared cores (two spawns of 2 processes each).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from affectseq.training import distributed as ddp

N_SAMPLES, DIM, GLOBAL_BATCH, STEPS = 32, 6, 8, 4


def _toy_data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(N_SAMPLES, DIM, generator=gen)
    return x, (x @ torch.arange(DIM, dtype=torch.float32) > 0).long()


def _order(epoch: int) -> np.ndarray:
    return np.random.default_rng([3, epoch]).permutation(N_SAMPLES)


def _train_toy(ctx: ddp.DistContext, out_path: str) -> None:
    """A few SGD steps of an MLP (no BatchNorm) with a per-rank batch of GLOBAL_BATCH / W."""
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Linear(DIM, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    model = ddp.prepare_model(plain, ctx, torch.device("cpu"))
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    x, y = _toy_data()
    sampler = ddp.FixedOrderSampler(_order, GLOBAL_BATCH // ctx.world_size, ctx)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=sampler.batch_size,
                                         sampler=sampler)
    steps, seen = 0, []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for xb, yb in loader:
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        seen.append(list(sampler))
    if ctx.is_main:
        torch.save({"state": ddp.unwrap(model).state_dict(), "steps": steps, "seen0": seen}, out_path)


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_weights(tmp_path: Path) -> None:
    ddp.launch(_train_toy, 1, str(tmp_path / "one.pt"))
    ddp.launch(_train_toy, 2, str(tmp_path / "two.pt"), backend="gloo")
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert one["steps"] == 2 * N_SAMPLES // GLOBAL_BATCH and two["steps"] == one["steps"]
    # Rank 0 of two saw the first half of each global batch of the epoch's order.
    assert two["seen0"][0] == _order(0).reshape(-1, 2, GLOBAL_BATCH // 2)[:, 0].reshape(-1).tolist()
    initial = torch.nn.Linear(DIM, 16)
    assert not torch.allclose(one["state"]["0.weight"], initial.weight)
    for name, value in one["state"].items():
        torch.testing.assert_close(two["state"][name], value, rtol=0, atol=1e-5, msg=name)


def test_fixed_order_sampler_partitions_each_global_batch() -> None:
    order = np.random.default_rng(0).permutation(23)
    shards = [list(ddp.FixedOrderSampler(lambda e: order, 4, ddp.DistContext(r, 2, r, "gloo"))) for r in (0, 1)]
    # 23 samples, global batch 8: 2 full steps (16 samples), the tail of 7 dropped on both ranks.
    assert len(shards[0]) == len(shards[1]) == 8
    for step in range(2):
        got = sorted(shards[0][4 * step: 4 * step + 4] + shards[1][4 * step: 4 * step + 4])
        assert got == sorted(order[8 * step: 8 * step + 8].tolist())
    assert list(ddp.FixedOrderSampler(lambda e: order, 4, ddp.DistContext())) == order.tolist()  # 1 rank: all


def test_contiguous_shards_cover_every_item_once_in_order() -> None:
    blocks = [ddp.shard_contiguous(11, ddp.DistContext(r, 3, r, "gloo")) for r in range(3)]
    assert np.concatenate(blocks).tolist() == list(range(11))
    assert [len(b) for b in blocks] == [4, 4, 3]


def test_single_process_helpers_are_no_ops() -> None:
    ctx = ddp.DistContext()
    assert not ctx.enabled and ctx.is_main and ddp.is_main(ctx)
    assert ddp.reduce_mean(6.0, 3, ctx) == 2.0
    arrays = {"a": np.arange(3)}
    assert ddp.gather_arrays(arrays, ctx) is arrays
    model = torch.nn.Linear(2, 2)
    assert ddp.prepare_model(model, ctx, torch.device("cpu")) is model
    assert ddp.rank_zero_only(lambda: 5)() == 5


def _train_store(ctx: ddp.DistContext, store: str, run_dirs: list[str]) -> None:
    from affectseq.scale.ddp_sequence import train_sequence_distributed
    from affectseq.training.sequence import SequenceModelConfig, SequenceTrainConfig

    config = SequenceTrainConfig(task="expr", window=4, stride=2, epochs=2, batch_size=8, lr=0.01, max_windows_per_epoch=32,
                                 model=SequenceModelConfig(hidden_sizes=(8,)), patience=5)
    # Each rank gets its own run_dir path: a rank other than 0 writing anything would create its folder.
    train_sequence_distributed(store, run_dirs[ctx.rank], config, ctx)


def _write_store(root: Path) -> Path:
    """6 videos x 40 frames (4 train, 2 validation); every frame has a feature and an EXPR label,
    so the loss is a plain batch mean and DDP steps are exact."""
    from affectseq.features.store import make_labels
    from affectseq.labels import EXPR_CLASSES_7
    from affectseq.features.store_writer import StoreWriter

    rng = np.random.default_rng(2)
    writer = StoreWriter(root, feature_dim=5, encoder={"name": "random"}, tasks=("expr",),
                         expr_classes=EXPR_CLASSES_7)
    for v in range(6):
        labels = make_labels(40, feature_valid=np.ones(40, bool), has_face=np.ones(40, bool),
                             expr=rng.integers(0, 7, 40))
        writer.write_video(f"v{v}", rng.standard_normal((40, 5)).astype(np.float16), labels,
                           {"expr": "train" if v < 4 else "validation"})
    return root


@pytest.mark.slow
def test_sequence_training_on_two_ranks_matches_one_and_only_rank0_writes(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    store = _write_store(tmp_path / "store")
    one, two, two_rank1 = (str(tmp_path / name) for name in ("one", "two", "two_rank1"))
    ddp.launch(_train_store, 1, str(store), [one])
    ddp.launch(_train_store, 2, str(store), [two, two_rank1], backend="gloo")
    assert not Path(two_rank1).exists()
    for name in ("config.yaml", "run.json", "history.csv", "checkpoint_last.pt", "checkpoint_best.safetensors",
                 "val_predictions.npz"):
        assert (Path(two) / name).is_file(), name
    a, b = load_file(Path(one) / "checkpoint_best.safetensors"), load_file(Path(two) / "checkpoint_best.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-5, msg=key)
    pa, pb = np.load(Path(one) / "val_predictions.npz"), np.load(Path(two) / "val_predictions.npz")
    np.testing.assert_array_equal(pa["frame_idx"], pb["frame_idx"])
    np.testing.assert_array_equal(pa["video_id"], pb["video_id"])
    np.testing.assert_allclose(pa["expr_prob"], pb["expr_prob"], atol=1e-5)


@pytest.fixture()
def one_thread():
    """Tiny GRUs: torch's thread hand-offs would cost more than the maths on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_one_rank_ddp_loop_trains_exactly_like_train_sequence(tmp_path: Path, one_thread) -> None:
    """The DDP loop on one process takes the single-process loop's steps and writes the same run dir."""
    import pandas as pd
    from safetensors.torch import load_file

    from affectseq.scale.ddp_sequence import train_sequence_distributed
    from affectseq.training.sequence import SequenceModelConfig, SequenceTrainConfig, train_sequence

    store = _write_store(tmp_path / "store")
    config = SequenceTrainConfig(task="expr", window=4, stride=3, epochs=2, batch_size=8, lr=0.01,
                                 model=SequenceModelConfig(hidden_sizes=(8,), dropout=0.0))
    ref = train_sequence(store, tmp_path / "ref", config, progress=False)
    got = train_sequence_distributed(store, tmp_path / "ddp", config, ddp.DistContext())
    assert (got.best_epoch, got.best_score) == (ref.best_epoch, ref.best_score)
    a, b = load_file(tmp_path / "ref" / "checkpoint_best.safetensors"), load_file(tmp_path / "ddp" /
                                                                                  "checkpoint_best.safetensors")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)
    timing = ["seconds", "train_windows_per_sec"]  # wall-clock columns; every other one must be equal
    ha, hb = (pd.read_csv(tmp_path / d / "history.csv").drop(columns=timing) for d in ("ref", "ddp"))
    pd.testing.assert_frame_equal(ha, hb)
