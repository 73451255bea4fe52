"""Model files are self-contained and checked: one header schema for frame models and sequence bundles,
stores carry their frame model, bundles carry the rate of their training features, and a store or bundle
copied elsewhere (its run folders deleted) still trains / predicts. Old (version-1) files still load."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from affectseq.config import load_config
from affectseq.errors import InputError
from affectseq.features.store import FRAME_MODEL_NAME, FeatureStore, make_labels
from affectseq.features.store_writer import StoreWriter
from affectseq.labels import EXPR_CLASSES_7
from affectseq.models.bundle import load_sequence_bundle
from affectseq.models.temporal import TemporalConfig, TemporalModel
from affectseq.modelfile.frame import read_frame_model_header
from affectseq.models.factory import load_frame_model
from affectseq.modelfile.schema import COMMON_FIELDS, FRAME_FIELDS, SEQUENCE_FIELDS
from affectseq.modelfile.sequence import read_sequence_header
from affectseq.models.factory import save_sequence_checkpoint
from affectseq.training.sequence import SequenceTrainConfig, train_sequence

from test_predict_helpers import save_tiny_frame_model

FEATURE_DIM = 96  # timm test_resnet's feature size
FPS = 25.0
TINY = dict(model={"hidden_sizes": [4]}, epochs=1, window=8, batch_size=16, max_windows_per_epoch=64)


def _write_store(root: Path, frame_file: Path | None, n_videos: int = 4, n_frames: int = 40,
                 video_fps: dict[str, float] | None = None) -> Path:
    """A store of random features made "by" ``frame_file`` (its videos at ``FPS`` unless told)."""
    rng = np.random.default_rng(0)
    ids = [f"vid{v}" for v in range(n_videos)]
    writer = StoreWriter(root, feature_dim=FEATURE_DIM, encoder={"name": "test_resnet"}, tasks=("expr",),
                         expr_classes=EXPR_CLASSES_7, checkpoint_path=frame_file,
                         video_fps=video_fps or {v: FPS for v in ids})
    for v, video_id in enumerate(ids):
        labels = make_labels(n_frames, feature_valid=np.ones(n_frames, bool), has_face=np.ones(n_frames, bool),
                             expr=rng.integers(0, 7, n_frames))
        split = "validation" if v == n_videos - 1 else "train"
        writer.write_video(video_id, rng.normal(size=(n_frames, FEATURE_DIM)).astype(np.float16), labels,
                           {"expr": split})
    return root


# -- done when: a store or bundle copied to another folder (original run folder deleted) still trains/predicts --
def test_a_moved_store_trains_and_the_moved_bundle_predicts_on_a_real_clip(tmp_path: Path, clips_dir: Path,
                                                                           one_torch_thread: None) -> None:
    from affectseq.cli import main

    frame_file = save_tiny_frame_model(tmp_path / "frame_run" / "checkpoint_best.safetensors")
    _write_store(tmp_path / "store", frame_file)
    assert (tmp_path / "store" / FRAME_MODEL_NAME).read_bytes() == frame_file.read_bytes()
    shutil.copytree(tmp_path / "store", tmp_path / "elsewhere" / "store")
    shutil.rmtree(tmp_path / "frame_run")
    shutil.rmtree(tmp_path / "store")

    run = tmp_path / "seq_run"
    train_sequence(tmp_path / "elsewhere" / "store", run, load_config(SequenceTrainConfig, overrides=TINY),
                   progress=False)
    moved = tmp_path / "models" / "gru.safetensors"
    moved.parent.mkdir()
    shutil.copyfile(run / "checkpoint_best.safetensors", moved)
    shutil.rmtree(run)
    shutil.rmtree(tmp_path / "elsewhere")

    header = read_sequence_header(moved)
    assert header["fps"] == FPS and header["window_sec"] == pytest.approx(8 / FPS)
    assert header["frame_model"]["embedded"] and header["encoder"]["name"] == "test_resnet"
    rc = main(["predict", str(clips_dir / "single_face.mp4"), "-o", str(tmp_path / "out"), "--model", str(moved),
               "--device", "cpu", "--no-progress"])
    assert rc == 0
    table = pd.read_csv(tmp_path / "out" / "single_face" / "frames.csv")
    faces = table[table["face_id"].notna()]
    probs = faces.filter(like="prob_").dropna()
    assert len(faces) > 30 and len(probs) > 0  # seq2one: a track's first frame has no window yet
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    summary = json.loads((tmp_path / "out" / "single_face" / "summary.json").read_text())
    assert "gru.safetensors" in json.dumps(summary)


def test_a_store_whose_frame_model_was_altered_or_lost_is_one_clear_line(tmp_path: Path) -> None:
    store = _write_store(tmp_path / "store", save_tiny_frame_model(tmp_path / "frame.safetensors"))
    copy = store / FRAME_MODEL_NAME
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(InputError, match="differs from the manifest's sha256") as err:
        train_sequence(store, tmp_path / "run", load_config(SequenceTrainConfig, overrides=TINY), progress=False)
    assert str(copy) in str(err.value) and "\n" not in str(err.value)
    copy.unlink()
    with pytest.raises(InputError, match="store's frame model is missing"):
        FeatureStore(store).frame_model_file()


def test_a_store_from_before_the_copy_uses_the_named_frame_model_while_it_is_unchanged(tmp_path: Path) -> None:
    frame_file = save_tiny_frame_model(tmp_path / "frame.safetensors")
    store = _write_store(tmp_path / "store", frame_file)
    manifest = json.loads((store / "manifest.json").read_text())
    del manifest["frame_model"]  # what stores written before the copy hold: the path and its sha256
    (store / FRAME_MODEL_NAME).unlink()
    (store / "manifest.json").write_text(json.dumps(manifest))
    assert FeatureStore(store).frame_model_file() == frame_file
    frame_file.write_bytes(frame_file.read_bytes()[:-1] + b" ")
    with pytest.raises(InputError, match="changed since the features were extracted"):
        FeatureStore(store).frame_model_file()
    frame_file.unlink()
    assert FeatureStore(store).frame_model_file() is None  # a bundle without a frame model, as before


def test_reopening_a_store_removes_a_killed_copy_of_its_frame_model(tmp_path: Path) -> None:
    frame_file = save_tiny_frame_model(tmp_path / "frame.safetensors")
    store = _write_store(tmp_path / "store", frame_file)
    stale = store / f".{FRAME_MODEL_NAME}.x1y2.tmp"  # what a writer killed while copying leaves
    stale.write_bytes(frame_file.read_bytes()[:100])
    StoreWriter(store, feature_dim=FEATURE_DIM, encoder={"name": "test_resnet"}, tasks=("expr",),
                expr_classes=EXPR_CLASSES_7, checkpoint_path=frame_file)
    assert not stale.exists() and FeatureStore(store).frame_model_file() == store / FRAME_MODEL_NAME


def test_a_store_resumed_with_another_frame_model_is_refused(tmp_path: Path) -> None:
    _write_store(tmp_path / "store", save_tiny_frame_model(tmp_path / "a.safetensors", seed=0))
    with pytest.raises(InputError, match="different checkpoint_sha256"):
        StoreWriter(tmp_path / "store", feature_dim=FEATURE_DIM, encoder={"name": "test_resnet"},
                    checkpoint_path=save_tiny_frame_model(tmp_path / "b.safetensors", seed=1))


# -- the frame rate of the features ---------------------------------------------------------------------------
def test_store_fps_is_the_rate_of_most_frames(tmp_path: Path) -> None:
    store = FeatureStore(_write_store(tmp_path / "s", None, n_videos=3,
                                      video_fps={"vid0": 30.0, "vid1": 25.0, "vid2": 25.0}))
    assert store.fps() == 25.0 and store.fps(["vid0"]) == 30.0
    unknown = FeatureStore(_write_store(tmp_path / "u", None, n_videos=2, video_fps={"vid0": 30.0}))
    assert unknown.fps() is None and unknown.fps(["vid0"]) == 30.0


def test_dataset_video_fps_reads_the_raw_videos(clips_dir: Path) -> None:
    from types import SimpleNamespace

    from affectseq.features.video_fps import dataset_video_fps
    from affectseq.io.video import probe_video

    videos = [SimpleNamespace(video_id="a", source_video=clips_dir / "single_face.mp4"),
              SimpleNamespace(video_id="b", source_video=clips_dir / "multi_face_pan.mp4"),
              SimpleNamespace(video_id="c", source_video=None)]
    dataset = SimpleNamespace(tasks=("EXPR",), splits=lambda task: ["Train_Set"], videos=lambda task, split: videos)
    rates = dataset_video_fps(dataset)
    assert rates == {"a": 30.0, "b": probe_video(clips_dir / "multi_face_pan.mp4").fps, "c": None}


def test_extraction_from_raw_videos_records_their_fps_and_copies_the_frame_model(tmp_path: Path,
                                                                                 one_torch_thread: None) -> None:
    from affectseq.cli import main
    from affectseq.io.video import probe_video
    from affectseq.prepare.video_features import extract_raw_videos

    videos = tmp_path / "videos"
    assert main(["data", "synth", str(videos), "--layout", "video_csv", "--videos", "2", "--frames", "12",
                 "--workers", "1", "--no-progress"]) == 0
    frame_file = save_tiny_frame_model(tmp_path / "frame.safetensors")
    extract_raw_videos(videos, load_frame_model(frame_file), tmp_path / "store", batch_size=8, num_workers=0,
                       device="cpu", progress=False)
    store = FeatureStore(tmp_path / "store")
    rates = {probe_video(path).fps for path in videos.rglob("*.mp4")}
    assert len(rates) == 1 and [e.fps for e in store.entries.values()] == [rates.pop()] * 2
    assert store.fps() == next(iter(store.entries.values())).fps
    assert store.frame_model_file().read_bytes() == frame_file.read_bytes()


# -- one header schema, checked -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frame_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_frame_model(tmp_path_factory.mktemp("frame") / "frame.safetensors")


@pytest.fixture(scope="module")
def bundle_file(frame_file: Path) -> Path:
    torch.manual_seed(1)
    temporal = TemporalModel(FEATURE_DIM, {"expr": 7}, TemporalConfig(hidden_sizes=(4,)))
    info = {"mode": "seq2one", "window": 6, "tasks": ["expr"], "expr_classes": list(EXPR_CLASSES_7), "fps": 30,
            "epoch": 3}
    return save_sequence_checkpoint(frame_file.parent / "seq.safetensors", temporal, info, frame_checkpoint=frame_file)


def test_both_kinds_share_the_common_fields(frame_file: Path, bundle_file: Path) -> None:
    frame, seq = read_frame_model_header(frame_file), read_sequence_header(bundle_file)
    assert set(frame) == set(COMMON_FIELDS) | set(FRAME_FIELDS)
    assert set(seq) == set(COMMON_FIELDS) | set(SEQUENCE_FIELDS)
    for key in ("encoder", "face", "va_range"):
        assert frame[key] == seq[key], key
    assert frame["face"] == {"framing": "abaw112", "crop_size": 112} and frame["version"] == seq["version"] == 2
    assert seq["fps"] == 30.0 and seq["window_sec"] == pytest.approx(0.2) and seq["meta"]["epoch"] == 3
    bundle = load_sequence_bundle(bundle_file)
    assert (bundle.fps, bundle.window, bundle.frame_model.spec.name) == (30.0, 6, "test_resnet")


def _rewrite(src: Path, dst: Path, edit: Callable[[Any], Any], tensors_edit: Callable[[dict], None] | None = None
             ) -> Path:
    with safe_open(str(src), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        header = json.loads(fh.metadata()["affectseq"])
    if tensors_edit is not None:
        tensors_edit(tensors)
    save_file(tensors, str(dst), metadata={"affectseq": json.dumps(edit(header))})
    return dst


def _edit(**changes: Any) -> Callable[[dict], dict]:
    def edit(header: dict) -> dict:
        for key, value in changes.items():
            if value is _DELETE:
                del header[key]
            else:
                header[key] = value
        return header
    return edit


_DELETE = object()


def _flip_frame_byte(tensors: dict) -> None:
    data = tensors["frame_file"].clone()
    data[100] ^= 0xFF
    tensors["frame_file"] = data


SEQ_TAMPERED = {
    "missing_fps": (_edit(fps=_DELETE), None, r"missing fields \['fps'\]"),
    "extra_field": (_edit(evil=1), None, r"unknown fields \['evil'\]"),
    "fps_as_text": (_edit(fps="30"), None, "fps: expected a number"),
    "fps_zero": (_edit(fps=0), None, "fps: expected a number"),
    "window_sec_disagrees": (_edit(window_sec=99.0), None, "window_sec: 99.0 is not window / fps"),
    "face_framing_disagrees": (_edit(face={"framing": "fer2013", "crop_size": 48}), None, "face.framing"),
    "va_range_backwards": (_edit(va_range=[1, -1]), None, "va_range"),
    "version_from_the_future": (_edit(version=3), None, "newer than this affectseq"),
    "frame_name_is_a_path": (lambda h: {**h, "frame_model": {**h["frame_model"], "name": "../x.safetensors"}}, None,
                             "bare file name"),
    "frame_sha_changed": (lambda h: {**h, "frame_model": {**h["frame_model"], "sha256": "0" * 64}}, None,
                          "does not match frame_model.sha256"),
    "embedded_bytes_changed": (lambda h: h, _flip_frame_byte, "does not match frame_model.sha256"),
    "embedded_bytes_gone": (lambda h: h, lambda t: t.pop("frame_file"), "no frame_file tensor"),
}


@pytest.mark.parametrize("case", sorted(SEQ_TAMPERED))
def test_tampered_bundles_fail_in_one_line(case: str, bundle_file: Path, tmp_path: Path) -> None:
    edit, tensors_edit, match = SEQ_TAMPERED[case]
    path = _rewrite(bundle_file, tmp_path / f"{case}.safetensors", edit, tensors_edit)
    with pytest.raises(InputError, match=match) as err:
        load_sequence_bundle(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


FRAME_TAMPERED = {
    "missing_face": (_edit(face=_DELETE), r"missing fields \['face'\]"),
    "extra_field": (_edit(run_me="rm -rf"), r"unknown fields \['run_me'\]"),
    "num_aus_as_text": (_edit(num_aus="13"), "num_aus"),
    "crop_size_huge": (_edit(face={"framing": "abaw112", "crop_size": 10**9}), "face.crop_size"),
}


@pytest.mark.parametrize("case", sorted(FRAME_TAMPERED))
def test_tampered_frame_models_fail_in_one_line(case: str, frame_file: Path, tmp_path: Path) -> None:
    edit, match = FRAME_TAMPERED[case]
    path = _rewrite(frame_file, tmp_path / f"{case}.safetensors", edit)
    with pytest.raises(InputError, match=match) as err:
        load_frame_model(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


# -- version-1 files (written before the one schema) still load ---------------------------------------------
def _write_v1_bundle(path: Path, frame_file: Path, embed: bool) -> Path:
    """A sequence bundle exactly as affectseq wrote them before the one schema (format version 1)."""
    from affectseq.utils.hashing import sha256_file

    torch.manual_seed(2)
    temporal = TemporalModel(FEATURE_DIM, {"expr": 7}, TemporalConfig(hidden_sizes=(4,)))
    tensors = {f"temporal.{k}": v.contiguous().clone() for k, v in temporal.state_dict().items()}
    ref: dict[str, Any] = {"sha256": sha256_file(frame_file), "path": str(frame_file.resolve()), "embedded": embed}
    if embed:
        with safe_open(str(frame_file), framework="pt") as fh:
            ref["header"] = fh.metadata()["affectseq"]
            tensors.update({f"frame.{k}": fh.get_tensor(k) for k in fh.keys()})
    header = {"format": "affectseq.sequence_model", "version": 1, "input_dim": FEATURE_DIM, "heads": {"expr": 7},
              "model_config": {"cell": "gru", "hidden_sizes": [4], "bidirectional": False, "dropout": 0.0,
                               "mode": "seq2one", "mask_channel": True},
              "mode": "seq2one", "window": 5, "tasks": ["expr"], "expr_classes": list(EXPR_CLASSES_7),
              "encoder": {"name": "synthetic"}, "store_checkpoint_sha256": None, "meta": {"store": "/gone"},
              "epoch": 2, "val_score": 0.5, "frame_checkpoint": ref}
    save_file(tensors, str(path), metadata={"affectseq": json.dumps(header)})
    return path


def _v1_frame_file(src: Path, dst: Path) -> Path:
    """``src`` with its header written the version-1 way (``spec``, no common fields)."""
    def edit(header: dict) -> dict:
        return {"format": "affectseq.frame_model", "version": 1, "spec": header["encoder"], "tasks": header["tasks"],
                "expr_classes": header["expr_classes"], "num_aus": header["num_aus"], "dropout": header["dropout"],
                "meta": header["meta"]}
    return _rewrite(src, dst, edit)


@pytest.mark.parametrize("embed", [True, False])
def test_version_1_bundles_still_load(tmp_path: Path, frame_file: Path, embed: bool) -> None:
    old_frame = _v1_frame_file(frame_file, tmp_path / "frame.safetensors")
    bundle = load_sequence_bundle(_write_v1_bundle(tmp_path / "seq.safetensors", old_frame, embed))
    assert bundle.window == 5 and bundle.fps is None and bundle.window_sec is None
    assert bundle.header["meta"] == {"store": "/gone", "store_encoder": {"name": "synthetic"}, "epoch": 2,
                                     "val_score": 0.5, "store_checkpoint_sha256": None}
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(bundle.frame_model.forward_features(x), load_frame_model(frame_file).forward_features(x))
    if not embed:  # the frame model is found by name beside the bundle only
        old_frame.rename(tmp_path / "elsewhere.safetensors")
        with pytest.raises(InputError, match="not found beside the sequence model"):
            load_sequence_bundle(tmp_path / "seq.safetensors")


@pytest.mark.parametrize("name", ["ferplus-v2", "fer2013-v1"])  # v3 (default) is written as version 2
def test_shipped_version_1_weights_read_as_version_2(name: str) -> None:
    from affectseq.features.shipped import shipped_model_path

    path = shipped_model_path(name)
    with safe_open(str(path), framework="pt") as fh:
        assert json.loads(fh.metadata()["affectseq"])["version"] == 1  # the files are not rewritten
    header = read_frame_model_header(path)
    assert header["version"] == 2 and header["face"]["framing"] == header["encoder"]["framing"] == "fer2013"


# -- predict and extract do not need training -------------------------------------------------------------
def test_predict_and_extract_never_import_training(bundle_file: Path) -> None:
    from test_architecture import import_graph

    graph = import_graph()
    roots = [m for m in graph if m.startswith("affectseq.predict")] + \
        ["affectseq.features.extract", "affectseq.cli.predict", "affectseq.cli.extract"]
    reached, todo = set(roots), list(roots)
    while todo:
        for module in graph[todo.pop()] - reached:
            reached.add(module)
            todo.append(module)
    assert sorted(m for m in reached if m.startswith("affectseq.training")) == []
    code = ("import sys, affectseq.predict, affectseq.features.extract, affectseq.cli.predict, affectseq.cli.extract\n"
            "from affectseq.predict.model import load_model\n"
            "bundle = load_model(sys.argv[1], device='cpu')\n"
            "assert bundle.info.kind == 'sequence'\n"
            "print(sorted(m for m in sys.modules if m.startswith('affectseq.training')))")
    out = subprocess.run([sys.executable, "-c", code, str(bundle_file)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
