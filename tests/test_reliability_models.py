"""Untrusted model files: crafted headers are one-line InputErrors; nothing in a file downloads, reads paths or runs code.

Frame models (.safetensors), sequence bundles and resume checkpoints (``checkpoint_last.pt``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from affectseq.errors import InputError
from affectseq.models.factory import load_frame_model, save_frame_model
from affectseq.features.encoders import create_encoder
from affectseq.features.frame_model import FrameModel
from affectseq.labels import EXPR_CLASSES_7
from affectseq.models.temporal import TemporalConfig, TemporalModel
from affectseq.models.bundle import load_sequence_bundle
from affectseq.models.factory import save_sequence_checkpoint


@pytest.fixture(scope="module")
def frame_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = FrameModel(create_encoder("test_resnet", input_size=32), tasks=["expr"], expr_classes=EXPR_CLASSES_7)
    return save_frame_model(tmp_path_factory.mktemp("frame") / "frame.safetensors", model, {"note": "test"})


def _rewrite(src: Path, dst: Path, edit: Callable[[Any], Any]) -> Path:
    """Copy a safetensors model with its ``affectseq`` header JSON replaced by ``edit(header)``."""
    with safe_open(str(src), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        header = json.loads(fh.metadata()["affectseq"])
    save_file(tensors, str(dst), metadata={"affectseq": json.dumps(edit(header))})
    return dst


def _spec_option(name: str, value: Any) -> Callable[[dict], dict]:
    def edit(header: dict) -> dict:
        header["encoder"]["options"][name] = value
        return header
    return edit


def _set(key: str, value: Any) -> Callable[[dict], dict]:
    def edit(header: dict) -> dict:
        header[key] = value
        return header
    return edit


def _spec_field(key: str, value: Any) -> Callable[[dict], dict]:
    def edit(header: dict) -> dict:
        header["encoder"][key] = value
        return header
    return edit


CRAFTED = {
    "json_array": (lambda header: [header], "not an object"),
    "json_string": (lambda header: "hello", "not an object"),
    "input_size_as_text": (_spec_field("input_size", "96"), "encoder.input_size"),
    "huge_input_size": (_spec_field("input_size", 10**7), "encoder.input_size"),
    "mean_as_number": (_spec_field("mean", 0.5), "encoder.mean"),
    "tasks_as_text": (_set("tasks", "expr"), "tasks"),
    "unknown_task": (_set("tasks", ["expr", "age"]), "tasks"),
    "dropout_nan": (_set("dropout", float("nan")), "dropout"),
    "meta_as_list": (_set("meta", [1, 2]), "meta"),
    "unknown_option": (_spec_option("drop_path_rate", 0.1), "may not come from a model file"),
    "pretrained": (_spec_option("pretrained", True), "may not come from a model file"),
    "pretrained_online": (_spec_option("pretrained_online", True), "may not come from a model file"),
    "init_weights": (_spec_option("init_weights", "/etc/passwd"), "may not come from a model file"),
    "option_wrong_type": (_spec_option("grayscale", "yes"), "encoder.options.grayscale"),
}


@pytest.fixture()
def no_file_reads_or_downloads(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record any attempt to load init weights or to build a timm model with pretrained weights."""
    import timm

    from affectseq.features import encoders

    calls: list = []
    real_create = timm.create_model
    monkeypatch.setattr(encoders, "_load_init_weights", lambda module, path: calls.append(("init", path)))

    def create_model(name, pretrained=False, **kw):
        if pretrained:
            calls.append(("download", name))
        return real_create(name, pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", create_model)
    return calls


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_frame_headers_are_one_line_input_errors(case: str, frame_file: Path, tmp_path: Path,
                                                         no_file_reads_or_downloads: list) -> None:
    edit, match = CRAFTED[case]
    path = _rewrite(frame_file, tmp_path / f"{case}.safetensors", edit)
    with pytest.raises(InputError, match=match) as err:
        load_frame_model(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert no_file_reads_or_downloads == []


def test_predict_loader_rejects_a_non_object_header_in_one_line(frame_file: Path, tmp_path: Path) -> None:
    from affectseq.predict.model import load_model

    path = _rewrite(frame_file, tmp_path / "array.safetensors", lambda header: [1, 2, 3])
    with pytest.raises(InputError, match="not an object") as err:
        load_model(path, backend="torch", device="cpu")
    assert "\n" not in str(err.value)


def test_a_valid_file_still_loads(frame_file: Path) -> None:
    model = load_frame_model(frame_file)
    assert model.spec.input_size == 32 and model.meta == {"note": "test"}


# -- sequence bundles --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle_file(frame_file: Path) -> Path:
    torch.manual_seed(1)
    temporal = TemporalModel(96, {"expr": 7}, TemporalConfig(hidden_sizes=(4,), mode="seq2one"))
    info = {"mode": "seq2one", "window": 4, "tasks": ["expr"], "expr_classes": list(EXPR_CLASSES_7),
            "encoder": load_frame_model(frame_file).spec.to_dict()}
    return save_sequence_checkpoint(frame_file.parent / "seq.safetensors", temporal, info, frame_checkpoint=frame_file)


SEQ_CRAFTED = {
    "json_array": (lambda header: [header], "not an object"),
    "heads_as_list": (_set("heads", ["expr"]), "heads"),
    "head_size_text": (_set("heads", {"expr": "7"}), "heads"),
    "window_negative": (_set("window", -3), "window"),
    "model_config_extra": (lambda h: {**h, "model_config": {**h["model_config"], "evil": 1}}, "model_config"),
    "frame_ref_as_text": (_set("frame_model", "/etc/passwd"), "frame_model"),
}


@pytest.mark.parametrize("case", sorted(SEQ_CRAFTED))
def test_crafted_sequence_headers_are_one_line_input_errors(case: str, bundle_file: Path, tmp_path: Path,
                                                            no_file_reads_or_downloads: list) -> None:
    edit, match = SEQ_CRAFTED[case]
    path = _rewrite(bundle_file, tmp_path / f"{case}.safetensors", edit)
    with pytest.raises(InputError, match=match) as err:
        load_sequence_bundle(path)
    assert "\n" not in str(err.value)
    assert no_file_reads_or_downloads == []


def test_a_referenced_frame_model_path_outside_the_bundle_folder_is_never_opened(
        bundle_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from affectseq.modelfile import sequence as checkpoints

    def edit(header: dict) -> dict:
        header["version"] = 1  # a version-1 reference named a full path
        header["frame_checkpoint"] = {"sha256": "0" * 64, "path": "/etc/passwd", "embedded": False}
        for key in ("frame_model", "affectseq_version", "face", "va_range", "fps", "window_sec"):
            del header[key]
        return header

    path = _rewrite(bundle_file, tmp_path / "ref.safetensors", edit)
    hashed: list = []
    real = checkpoints.sha256_file
    monkeypatch.setattr(checkpoints, "sha256_file", lambda p: hashed.append(str(p)) or real(p))
    with pytest.raises(InputError, match="not found beside"):
        load_sequence_bundle(path)
    assert "/etc/passwd" not in hashed


def test_a_valid_bundle_still_loads(bundle_file: Path) -> None:
    bundle = load_sequence_bundle(bundle_file)
    assert bundle.frame_model is not None and bundle.window == 4


# -- resume checkpoints (torch.load weights_only) ----------------------------------------------------------------
class Payload:
    """Unpickling this runs code: it creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_resume_checkpoint_with_an_arbitrary_class_is_refused_without_running_it(tmp_path: Path) -> None:
    from affectseq.features.store_writer import write_random_store
    from affectseq.training.sequence import SequenceModelConfig, SequenceTrainConfig, train_sequence

    store = write_random_store(tmp_path / "store", n_rows=400, feature_dim=8, video_frames=40, seed=0,
                               val_fraction=0.3)
    run = tmp_path / "run"
    config = SequenceTrainConfig(window=4, epochs=1, batch_size=16, model=SequenceModelConfig(hidden_sizes=(4,)))
    run.mkdir()
    marker = tmp_path / "pwned"
    torch.save({"model": {}, "optimizer": {}, "state": {}, "config": {}, "x": Payload(marker)},
               run / "checkpoint_last.pt")
    with pytest.raises(InputError, match="checkpoint_last.pt: not a loadable resume checkpoint") as err:
        train_sequence(store, run, config, resume=True, progress=False)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_resume_checkpoints_hold_only_plain_values(tmp_path: Path) -> None:
    from affectseq.training.checkpoints import load_resume_checkpoint, save_resume_checkpoint

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    state = {"epoch": 2, "best_score": -float("inf"), "history": [{"val_ccc": np.float64(0.5), "n": np.int64(3)}]}
    path = save_resume_checkpoint(tmp_path / "last.pt", {"model": model.state_dict(),
                                                         "optimizer": optimizer.state_dict(), "state": state})
    torch.load(path, weights_only=True)  # loadable by torch's restricted unpickler as is
    saved = load_resume_checkpoint(path)
    assert saved["state"]["history"][0] == {"val_ccc": 0.5, "n": 3}
    assert type(saved["state"]["history"][0]["n"]) is int
    optimizer.load_state_dict(saved["optimizer"])
    with pytest.raises(InputError, match="not an affectseq resume checkpoint"):
        torch.save([1, 2], tmp_path / "list.pt")
        load_resume_checkpoint(tmp_path / "list.pt")


def test_no_torch_load_in_the_package_trusts_pickles() -> None:
    import affectseq

    root = Path(affectseq.__file__).parent
    offenders = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py")
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if "weights_only=False" in line]
    assert offenders == []


def test_model_files_never_set_encoder_file_or_download_options() -> None:
    from affectseq.features.encoders import SPEC_OPTIONS

    assert not {"init_weights", "pretrained_online", "pretrained"} & set(SPEC_OPTIONS)
