"""Frame training (stage 1) under DDP: 2 gloo processes take the steps of one; only rank 0 writes.

The slow test trains a tiny BatchNorm-free timm encoder (``test_convnext``) on a
generated FER2013-format archive, with the paper's augmentations on. Time budget:
< 60 s on 2 shared cores (one in-process run, two spawns of 2 processes).
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from affectseq.config import load_config
from affectseq.training import distributed as ddp
from affectseq.training.frames import FrameTrainConfig

N_TRAIN, N_VAL, N_TEST, GLOBAL_BATCH = 32, 12, 6, 8
SETTINGS = {
    "task": "expr", "encoder": {"name": "test_convnext", "input_size": 32, "head_dropout": 0.0},
    "batch_size": GLOBAL_BATCH, "eval_batch_size": 4, "lr": 0.003, "scheduler": "constant", "warmup_epochs": 0.0,
    "early_stopping_patience": 0, "threads": 1, "seed": 4,
}


def _config(epochs: int) -> FrameTrainConfig:
    return load_config(FrameTrainConfig, overrides={**SETTINGS, "epochs": epochs})


def _write_fer_npz(path: Path) -> Path:
    """Random 48x48 gray faces with every frame labelled (so the loss is a plain batch mean)."""
    rng = np.random.default_rng(7)
    n = N_TRAIN + N_VAL + N_TEST
    np.savez(path, images=rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), labels=rng.integers(0, 7, n),
             split=np.repeat(np.array([0, 1, 2], np.uint8), [N_TRAIN, N_VAL, N_TEST]))
    return path


def _train_rank(ctx: ddp.DistContext, data: str, run_dirs: list[str], epochs: int, resume: bool) -> None:
    from affectseq.scale.ddp_frames import train_frames_distributed

    # Each rank gets its own run_dir path: a rank other than 0 writing anything would create its folder.
    summary = train_frames_distributed(data, _config(epochs), run_dirs[ctx.rank], ctx, resume=resume)
    assert summary["epochs_completed"] == epochs  # every rank gets rank 0's summary


@pytest.fixture()
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_two_gloo_ranks_train_frames_like_one_process_and_resume(tmp_path: Path, restore_threads) -> None:
    """1 process x 2 epochs == 2 ranks x (1 epoch, then resumed for a 2nd): weights, predictions, metrics."""
    from affectseq.training.frames import train_frames

    data = _write_fer_npz(tmp_path / "faces.npz")
    one, two, two_rank1 = (tmp_path / name for name in ("one", "two", "two_rank1"))
    train_frames(data, one, _config(2))
    ddp.launch(_train_rank, 2, str(data), [str(two), str(two_rank1)], 1, False, backend="gloo")
    shutil.copy(two / "checkpoint_last.pt", tmp_path / "after_epoch1.pt")
    ddp.launch(_train_rank, 2, str(data), [str(two), str(two_rank1)], 2, True, backend="gloo")

    assert not two_rank1.exists()
    for name in ("config.yaml", "run.json", "history.csv", "checkpoint_last.pt", "checkpoint_best.safetensors",
                 "val_predictions.npz", "test_predictions.npz", "test_metrics.json", "train_summary.json",
                 "train_distribution.json"):
        assert (two / name).is_file(), name
    a, b = (torch.load(d / "checkpoint_last.pt", weights_only=False) for d in (one, two))
    assert a["state"]["step"] == b["state"]["step"] == 2 * N_TRAIN // GLOBAL_BATCH
    epoch1 = torch.load(tmp_path / "after_epoch1.pt", weights_only=False)["model"]
    assert max(float((b["model"][k] - epoch1[k]).abs().max()) for k in epoch1) > 1e-3  # epoch 2 did train
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=0, atol=1e-5, msg=key)
    for row_a, row_b in zip(a["state"]["history"], b["state"]["history"], strict=True):
        assert row_a["train_loss"] == pytest.approx(row_b["train_loss"], abs=1e-5)
        assert row_a["val_expr_accuracy"] == row_b["val_expr_accuracy"]
    pa, pb = np.load(one / "val_predictions.npz"), np.load(two / "val_predictions.npz")
    np.testing.assert_array_equal(pa["frame_idx"], pb["frame_idx"])
    np.testing.assert_allclose(pa["expr_prob"], pb["expr_prob"], atol=1e-5)


def test_epoch_sampling_draws_what_the_shuffled_loader_draws() -> None:
    """DDP ranks rebuild the single-process loader's order and augmentation generator (torch internals)."""
    from affectseq.training.frame_task import epoch_sampling

    generator = torch.Generator().manual_seed(3 * 1000 + 2)
    loader = torch.utils.data.DataLoader(range(10), batch_size=4, shuffle=True, drop_last=True, generator=generator)
    batches = [b.tolist() for b in itertools.islice(loader, 2)]
    mine, order = epoch_sampling(3, 2, 10)
    assert sorted(order.tolist()) == list(range(10))
    assert order[:8].tolist() == batches[0] + batches[1]
    torch.testing.assert_close(torch.rand(5, generator=mine), torch.rand(5, generator=generator), rtol=0, atol=0)


def test_augmenting_parts_of_a_batch_equals_augmenting_the_batch() -> None:
    from affectseq.features.encoders import create_encoder
    from affectseq.training.augment import AugmentConfig, build_augment

    spec = create_encoder("paper_cnn").spec
    augment = build_augment(AugmentConfig(), spec)
    x = torch.randn(8, 1, 96, 96, generator=torch.Generator().manual_seed(0))
    whole = augment(x, generator=torch.Generator().manual_seed(1))
    parts = [augment(x[r * 4:(r + 1) * 4], generator=torch.Generator().manual_seed(1), rows=(r * 4, 8))
             for r in (0, 1)]
    torch.testing.assert_close(torch.cat(parts), whole, rtol=0, atol=0)
    assert not torch.equal(parts[0], parts[1][:4])  # each part keeps its own rows' parameters


def test_frame_ddp_checks_batch_and_backend(tmp_path: Path) -> None:
    from affectseq.errors import ConfigError
    from affectseq.training.frames import train_frames

    def train(ctx: ddp.DistContext) -> None:
        train_frames(tmp_path / "missing.npz", tmp_path / "run", _config(1), ctx=ctx)

    with pytest.raises(ConfigError, match="divisible"):
        train(ddp.DistContext(rank=0, world_size=3, backend="gloo"))
    if not torch.cuda.is_available():  # nccl means one GPU per rank
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            train(ddp.DistContext(rank=0, world_size=2, backend="nccl"))
    assert not (tmp_path / "run").exists()


def test_scale_train_frames_parses_like_train_frames() -> None:
    import argparse

    from affectseq.cli import scale

    parser = argparse.ArgumentParser()
    scale.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["scale", "train-frames", "--data", "d.npz", "--out", "r", "--nproc", "2",
                              "--encoder", "resnet18", "epochs=1"])
    assert (args.nproc, args.backend, args.encoder, args.overrides) == (2, "auto", "resnet18", ["epochs=1"])
    assert args.handler is scale.run_train_frames_ddp
