"""FER+ support: the adapter's label protocols, soft-target training, class alignment when scoring, CIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from affectseq import labels, metrics
from affectseq.data import ferplus
from affectseq.errors import InputError
from affectseq.training.losses import expr_loss

# FER+ vote columns: neutral happiness surprise sadness anger disgust fear contempt unknown NF
VOTES = np.array([
    [0, 10, 0, 0, 0, 0, 0, 0, 0, 0],  # happiness, unanimous
    [4, 0, 0, 0, 4, 0, 0, 0, 2, 0],   # tie neutral/anger -> neutral (first FER+ column)
    [2, 0, 0, 0, 0, 0, 0, 0, 6, 2],   # unknown wins -> left out
    [3, 0, 0, 0, 0, 0, 0, 0, 3, 4],   # NF wins -> left out
    [3, 0, 0, 0, 0, 0, 0, 3, 4, 0],   # unknown 4 beats 3 -> left out
    [1, 0, 0, 0, 0, 0, 0, 6, 3, 0],   # contempt
    [0, 0, 1, 0, 0, 0, 5, 0, 4, 0],   # fear beats unknown
], dtype=np.int16)


def _write_ferplus(path: Path, votes: np.ndarray, split: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (len(votes), 48, 48), dtype=np.uint8)
    names = np.array([f"FER2013Train/fer{i:07d}.png" for i in range(len(votes))])
    np.savez_compressed(path, images=images, votes=votes, split=split, names=names,
                        fer2013_row=np.arange(len(votes), dtype=np.int32))
    return path


def test_majority_protocol_on_known_votes():
    got = ferplus.majority_labels(VOTES)
    c = labels.EXPR_CLASSES_FERPLUS.index
    assert got.tolist() == [c("Happiness"), c("Neutral"), -1, -1, -1, c("Contempt"), c("Fear")]
    got7 = ferplus.majority_labels(VOTES, num_classes=7)
    assert got7[5] == -1 and got7[0] == c("Happiness")


def test_vote_distribution_is_canonical_order_and_normalised():
    dist = ferplus.vote_distribution(VOTES)
    c = labels.EXPR_CLASSES_FERPLUS.index
    assert dist.shape == (len(VOTES), 8)
    np.testing.assert_allclose(dist[1, [c("Neutral"), c("Anger")]], [0.5, 0.5])
    np.testing.assert_allclose(dist[5, [c("Neutral"), c("Contempt")]], [1 / 7, 6 / 7], rtol=1e-6)
    np.testing.assert_allclose(dist.sum(1), 1.0, rtol=1e-6)
    assert (ferplus.vote_distribution(np.zeros((1, 10))) == 0).all()


def test_load_ferplus_keeps_only_emotion_majorities(tmp_path):
    path = _write_ferplus(tmp_path / "fp.npz", VOTES, np.array([0, 0, 0, 0, 0, 0, 1]))
    assert ferplus.is_ferplus_npz(path)
    train = ferplus.load_ferplus(path, "train")
    assert len(train) == 3 and train.expr_classes == labels.EXPR_CLASSES_FERPLUS
    assert train.expr_dist.shape == (3, 8)
    assert list(train.item_names) == [f"FER2013Train/fer{i:07d}.png" for i in (0, 1, 5)]
    assert train.load_image(0).shape == (48, 48, 3)
    assert len(ferplus.load_ferplus(path, "train", num_classes=7)) == 2  # the contempt image goes
    with pytest.raises(InputError, match="unknown FER\\+ split"):
        ferplus.load_ferplus(path, "dev")


def test_real_ferplus_counts_match_an_independent_count(ferplus_path):
    votes, split = ferplus.read_ferplus_votes(ferplus_path)
    # Independently: an image is kept when some emotion has at least as many votes as unknown and NF.
    kept = votes[:, :8].max(1) >= votes[:, 8:].max(1)
    for name, code in ferplus.FERPLUS_SPLITS.items():
        assert len(ferplus.load_ferplus(ferplus_path, name)) == int((kept & (split == code)).sum())
    test = ferplus.load_ferplus(ferplus_path, "test")
    assert len(test) == 3545  # 3,573 test images, 28 won by unknown/NF
    assert np.bincount(test.expr, minlength=8)[labels.EXPR_CLASSES_FERPLUS.index("Contempt")] > 0


def test_soft_cross_entropy_equals_the_definition_and_masks_empty_rows():
    logits = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    target = torch.from_numpy(ferplus.vote_distribution(np.vstack([VOTES[[0, 1, 5]], np.zeros((1, 10))])))
    got = expr_loss(logits, target)
    want = -(target[:3] * F.log_softmax(logits[:3], 1)).sum(1).mean()
    assert torch.allclose(got, want, atol=1e-6)
    assert expr_loss(logits, torch.zeros(4, 8)) is None
    # A one-hot distribution is the hard-label loss.
    one_hot = F.one_hot(torch.tensor([4, 0, 7, 2]), 8).float()
    assert torch.allclose(expr_loss(logits, one_hot), expr_loss(logits, torch.tensor([4, 0, 7, 2])), atol=1e-6)


def test_class_index_map_and_alignment():
    from affectseq.training.scoring import align_expr_prob

    fp, seven, eight = labels.EXPR_CLASSES_FERPLUS, labels.EXPR_CLASSES_7, labels.EXPR_CLASSES_8
    assert labels.class_index_map(fp, seven) == list(range(7))
    assert labels.class_index_map(fp, eight) == list(range(7)) + [7]  # Contempt stands in for Other
    assert labels.class_index_map(seven, fp) == list(range(7)) + [None]
    prob = np.array([[0.1, 0, 0, 0, 0.2, 0, 0, 0.7]], dtype=np.float32)  # Contempt most likely
    aligned = align_expr_prob(prob, fp, seven)
    np.testing.assert_allclose(aligned, [[1 / 3, 0, 0, 0, 2 / 3, 0, 0]], rtol=1e-6)
    assert aligned.argmax() == seven.index("Happiness")
    assert align_expr_prob(prob, fp, fp) is prob


def test_train_duplicate_mask_finds_exact_pixel_copies():
    from affectseq.data.frames import ArrayFrameSet
    from affectseq.training.scoring import train_duplicate_mask

    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (20, 48, 48), dtype=np.uint8)
    test = rng.integers(0, 256, (6, 48, 48), dtype=np.uint8)
    test[[1, 4]] = train[[7, 3]]
    nearly = train[5].copy()
    nearly[0, 0] ^= 1  # one pixel off: not a duplicate
    test[2] = nearly
    mask = train_duplicate_mask(ArrayFrameSet("t", test), ArrayFrameSet("tr", train))
    assert mask.tolist() == [False, True, False, False, True, False]


def test_bootstrap_ci_brackets_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(0)

    def interval(n):
        y = rng.integers(0, 7, n)
        pred = np.where(rng.random(n) < 0.8, y, (y + 1) % 7)
        return metrics.accuracy(y, pred), metrics.bootstrap_ci(metrics.accuracy, y, pred, n_boot=400)

    acc_small, (lo_small, hi_small) = interval(400)
    acc_big, (lo_big, hi_big) = interval(6400)
    assert lo_small < acc_small < hi_small and lo_big < acc_big < hi_big
    assert 0.76 < lo_big < 0.8 < hi_big < 0.82
    # The interval of a proportion shrinks like 1/sqrt(n): 16x the frames -> about a quarter of the width.
    assert 0.15 < (hi_big - lo_big) / (hi_small - lo_small) < 0.4
    y = np.zeros(50, dtype=int)
    assert metrics.bootstrap_ci(metrics.accuracy, y, y, n_boot=50) == (1.0, 1.0)
