"""``affectseq evaluate`` on a fabricated run directory whose metrics are known in advance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectseq import labels as L
from affectseq.cli import main
from affectseq.errors import InputError
from affectseq.evaluation.predictions import load_predictions
from affectseq.evaluation.report import evaluate_run

N = 140  # 20 frames per class, 7 classes


def _fabricate(run_dir: Path, with_au: bool = True) -> None:
    run_dir.mkdir(parents=True)
    expr_true = np.repeat(np.arange(7), 20)
    expr_pred = expr_true.copy()
    expr_pred[expr_true == 3] = 0  # every Fear frame predicted Neutral: Fear recall 0
    expr_true[:5] = -1  # 5 unannotated Neutral frames
    expr_prob = np.full((N, 7), 0.01)
    expr_prob[np.arange(N), expr_pred] = 0.94
    va_true = np.column_stack([np.linspace(-0.9, 0.9, N), np.sin(np.linspace(0, 6, N))])
    va_pred = np.column_stack([va_true[:, 0], np.full(N, 0.2)])  # valence exact, arousal constant
    va_true[-3:] = np.nan
    arrays = dict(
        video_id=np.array(["vid_a"] * 70 + ["vid_b"] * 70), frame_idx=np.tile(np.arange(70), 2),
        expr_true=expr_true, expr_prob=expr_prob.astype(np.float32), expr_classes=np.array(L.EXPR_CLASSES_7),
        va_true=va_true.astype(np.float32), va_pred=va_pred.astype(np.float32),
    )
    if with_au:
        au_true = np.zeros((N, 13), dtype=np.int8)
        au_true[::2] = 1
        au_true[:, 5:] = -1
        arrays.update(au_true=au_true, au_prob=au_true.clip(0, 1).astype(np.float32))  # perfect on annotated AUs
    np.savez(run_dir / "val_predictions.npz", **arrays)
    pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.7, 0.5], "val_loss": [1.1, 0.8, 0.75],
                  "val_macro_f1": [0.3, 0.5, 0.6], "seconds": [1.0, 1.1, 1.0]}).to_csv(run_dir / "history.csv",
                                                                                     index=False)
    (run_dir / "run.json").write_text(json.dumps({"seed": 7, "command": "affectseq train frames ..."}))


def test_evaluate_run_known_metrics(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _fabricate(run_dir)
    result = evaluate_run(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    ex = metrics["expr"]
    # 135 annotated frames; the 20 Fear frames are wrong.
    assert ex["n_frames"] == 135
    assert ex["accuracy"] == pytest.approx(115 / 135)
    # Neutral: tp 15, fp 20 -> P 15/35, R 1 -> F1 0.6; Fear: 0; five others: 1.
    assert ex["macro_f1"] == pytest.approx((0.6 + 0 + 5) / 7)
    assert ex["abaw_score"] == pytest.approx(0.67 * ex["macro_f1"] + 0.33 * ex["accuracy"])
    assert "0.67" in ex["abaw_formula"]
    assert np.array(ex["confusion_counts"])[3, 0] == 20
    fear = next(r for r in ex["per_class"] if r["class"] == "Fear")
    assert fear["recall"] == 0.0 and fear["support"] == 20
    va = metrics["va"]
    assert va["ccc_valence"] == pytest.approx(1.0, abs=1e-6)
    assert va["ccc_arousal"] == pytest.approx(0.0, abs=1e-6)
    assert va["mean_ccc"] == pytest.approx(0.5, abs=1e-6)
    assert va["n_frames"] == [N - 3, N - 3]
    assert metrics["au"]["au_macro_f1"] == pytest.approx(1.0)
    assert metrics["n_videos"] == 2
    for rel in result.files.values():
        assert (run_dir / rel).is_file() and (run_dir / rel).stat().st_size > 0, rel
    report = (run_dir / "report.md").read_text()
    for key in ("confusion_counts", "confusion_normalized", "va_scatter", "va_hist2d", "training_curves"):
        assert f"]({result.files[key]})" in report
    assert "| Fear |" in (run_dir / "report" / "per_class.md").read_text()
    table = pd.read_csv(run_dir / "report" / "per_class.csv", index_col=0)
    assert table.loc["Neutral", "f1"] == pytest.approx(0.6)
    assert "`7`" in report  # seed from run.json


def test_cli_evaluate_writes_to_out_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    _fabricate(run_dir, with_au=False)
    assert main(["evaluate", str(run_dir), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "mean=0.5000" in out and "macro-F1=" in out
    assert (tmp_path / "rep" / "metrics.json").is_file()
    assert not (run_dir / "metrics.json").exists()


def test_bad_inputs_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty)]) == 1
    err = capsys.readouterr().err
    assert "val_predictions.npz" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "val_predictions.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable"):
        load_predictions(bad / "val_predictions.npz")
    np.savez(bad / "val_predictions.npz", video_id=np.array(["a"]), frame_idx=np.array([0]),
             expr_true=np.array([0]))
    with pytest.raises(InputError, match="without its partner"):
        load_predictions(bad / "val_predictions.npz")
