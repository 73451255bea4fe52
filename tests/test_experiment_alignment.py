"""Study building blocks: scoring rows on identical frames, and the time-shuffled negative-control store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectseq import metrics as M
from affectseq.evaluation.predictions import Predictions
from affectseq.experiments.alignment import AlignmentError, align_predictions, score_aligned
from affectseq.experiments.shuffle import load_permutations, shuffle_store_in_time, unshuffle_predictions
from affectseq.features.store import FeatureStore, make_labels
from affectseq.features.store_writer import StoreWriter

RNG = np.random.default_rng(0)
TRUTH = {vid: RNG.integers(0, 7, 50) for vid in ("v1", "v2")}


def _expr_preds(frames: dict[str, np.ndarray], correct_every: int) -> Predictions:
    vids, idx, true = [], [], []
    for vid, f in frames.items():
        vids += [vid] * len(f)
        idx.append(f)
        true.append(TRUTH[vid][f])
    y = np.concatenate(true)
    pred = np.where(np.arange(len(y)) % correct_every == 0, y, (y + 1) % 7)
    return Predictions(video_id=np.array(vids), frame_idx=np.concatenate(idx), expr_true=y,
                       expr_prob=np.eye(7)[pred], expr_classes=())


def test_rows_scored_on_common_frames_only() -> None:
    # A CNN predicts frames with a face (here: all but 10..14 of v1); a seq2one RNN only frames >= 8.
    cnn = _expr_preds({"v2": np.arange(50), "v1": np.setdiff1d(np.arange(50), np.arange(10, 15))}, 2)
    rnn = _expr_preds({"v1": np.arange(8, 50), "v2": np.arange(8, 50)[::-1]}, 1)  # reversed order on purpose
    aligned = align_predictions({"CNN": cnn, "CNN+RNN": rnn}, "expr")
    assert aligned.n_common == (42 - 5) + 42
    assert aligned.n_per_row == {"CNN": 95, "CNN+RNN": 84}
    a, b = aligned.rows["CNN"], aligned.rows["CNN+RNN"]
    np.testing.assert_array_equal(a.video_id, b.video_id)
    np.testing.assert_array_equal(a.frame_idx, b.frame_idx)
    assert a.frame_idx.min() >= 8 and not np.isin(np.arange(10, 15), a.frame_idx[a.video_id == "v1"]).any()
    table = score_aligned(aligned, "expr", num_classes=7).set_index("row")
    assert table.loc["CNN+RNN", "accuracy"] == pytest.approx(1.0)
    assert table.loc["CNN", "accuracy"] == pytest.approx(M.accuracy(a.expr_true, a.expr_pred))
    assert 0.4 < table.loc["CNN", "accuracy"] < 0.6
    assert set(table["n_frames"]) == {aligned.n_common}
    assert "0.67" in table.loc["CNN", "abaw_formula"]


def test_disagreeing_truths_and_disjoint_rows_are_errors() -> None:
    cnn = _expr_preds({"v1": np.arange(20)}, 1)
    bad = Predictions(video_id=cnn.video_id, frame_idx=cnn.frame_idx, expr_true=(cnn.expr_true + 1) % 7,
                      expr_prob=cnn.expr_prob)
    with pytest.raises(AlignmentError, match="disagree"):
        align_predictions({"a": cnn, "b": bad}, "expr")
    other = _expr_preds({"v2": np.arange(20)}, 1)
    with pytest.raises(AlignmentError, match="share no"):
        align_predictions({"a": cnn, "b": other}, "expr")


def test_va_rows_scored_by_ccc() -> None:
    t = np.column_stack([np.linspace(-1, 1, 30), np.cos(np.linspace(0, 3, 30))])
    exact = Predictions(video_id=np.array(["v"] * 30), frame_idx=np.arange(30), va_true=t, va_pred=t.copy())
    const = Predictions(video_id=np.array(["v"] * 20), frame_idx=np.arange(10, 30), va_true=t[10:],
                        va_pred=np.zeros((20, 2)))
    table = score_aligned(align_predictions({"exact": exact, "const": const}, "va"), "va").set_index("row")
    assert table.loc["exact", "mean_ccc"] == pytest.approx(1.0)
    assert table.loc["const", "mean_ccc"] == pytest.approx(0.0)
    assert table.loc["exact", "n_frames"] == 20


def _store(root: Path) -> Path:
    writer = StoreWriter(root, feature_dim=3, encoder={"name": "test"}, tasks=("expr",),
                         expr_classes=tuple(str(i) for i in range(7)))
    for vid, split in (("v1", "train"), ("v2", "validation")):
        n = 50
        feats = np.column_stack([np.arange(n), TRUTH[vid], np.full(n, 7.0)]).astype(np.float16)
        valid = np.arange(n) % 9 != 0
        writer.write_video(vid, feats, make_labels(n, feature_valid=valid, has_face=valid, expr=TRUTH[vid]),
                           {"expr": split})
    return root


def test_shuffled_store_moves_features_and_labels_together(tmp_path: Path) -> None:
    src = FeatureStore(_store(tmp_path / "store"))
    perms = shuffle_store_in_time(src.root, tmp_path / "shuffled", seed=3)
    dst = FeatureStore(tmp_path / "shuffled")
    assert set(dst.video_ids()) == {"v1", "v2"} and dst.splits("expr") == ["train", "validation"]
    for vid in ("v1", "v2"):
        perm = perms[vid]
        assert sorted(perm.tolist()) == list(range(50)) and not np.array_equal(perm, np.arange(50))
        feats, labels = np.asarray(dst.features(vid)), np.asarray(dst.labels(vid))
        # Row j holds original frame perm[j]: its feature (column 0 = original frame number), label and mask.
        np.testing.assert_array_equal(feats[:, 0], perm)
        np.testing.assert_array_equal(labels["expr"], TRUTH[vid][perm])
        np.testing.assert_array_equal(labels["feature_valid"], perm % 9 != 0)
    # Seeded, saved, and a rerun skips the work.
    again = load_permutations(tmp_path / "shuffled")
    assert all(np.array_equal(again[v], perms[v]) for v in perms)
    assert all(np.array_equal(shuffle_store_in_time(src.root, tmp_path / "other", seed=3)[v], perms[v])
               for v in perms)


def test_unshuffled_predictions_align_with_original_frames(tmp_path: Path) -> None:
    perms = shuffle_store_in_time(_store(tmp_path / "store"), tmp_path / "shuffled", seed=1)
    positions = np.arange(8, 50)  # a seq2one RNN on the shuffled store predicts rows >= 8
    shuffled_truth = TRUTH["v2"][perms["v2"]][positions]
    preds = Predictions(video_id=np.array(["v2"] * len(positions)), frame_idx=positions,
                        expr_true=shuffled_truth, expr_prob=np.eye(7)[shuffled_truth])
    back = unshuffle_predictions(preds, perms)
    np.testing.assert_array_equal(back.expr_true, TRUTH["v2"][back.frame_idx])
    cnn = _expr_preds({"v2": np.arange(50)}, 1)
    aligned = align_predictions({"CNN": cnn, "shuffled RNN": back}, "expr")
    assert aligned.n_common == len(positions)


def test_chance_macro_f1_is_the_level_of_unrelated_predictions() -> None:
    from affectseq.experiments.alignment import chance_macro_f1

    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 4000)
    # Perfect predictions keep their class distribution; shuffled, each class is right ~1/4 of the time.
    assert chance_macro_f1(y, y, 4) == pytest.approx(0.25, abs=0.02)
    # Always predicting class 0: chance equals the real score (it never depended on the frame).
    zeros = np.zeros_like(y)
    assert chance_macro_f1(y, zeros, 4) == pytest.approx(M.macro_f1(y, zeros, 4))


def test_aggregate_over_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    from affectseq.cli import main

    paths = []
    for seed, value in enumerate((0.2, 0.4)):
        path = tmp_path / f"s{seed}.csv"
        pd.DataFrame({"task": ["va", "va"], "row": ["CNN", "CNN+RNN"], "mean_ccc": [value, value + 0.1]}).to_csv(
            path, index=False)
        paths.append(str(path))
    assert main(["experiment", "aggregate", *paths, "--out", str(tmp_path / "summary.csv")]) == 0
    printed = capsys.readouterr().out
    assert "| CNN | 2 | 0.300 ± 0.141 |" in printed
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.loc[summary["row"] == "CNN+RNN", "mean_ccc_mean"].item() == pytest.approx(0.4)
