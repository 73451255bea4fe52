"""The temporal-model registry: every registered architecture (and one registered here, from outside affectseq)
trains on a store, its bundle records arch + args and runs in predict; the causal ones stream, live equal to causal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from affectseq.config import config_to_dict, load_config
from affectseq.errors import ConfigError, InputError
from affectseq.models.bundle import load_sequence_bundle
from affectseq.models.factory import build_temporal_model, save_sequence_checkpoint
from affectseq.models.registry import register_temporal, registered_archs
from affectseq.models.temporal import TemporalConfig, TemporalModel
from affectseq.modelfile.sequence import read_sequence_header
from affectseq.training.sequence import SequenceModelConfig, SequenceTrainConfig, train_sequence

from test_predict_helpers import ScriptedFaces, box_crops, gray_frames, save_tiny_frame_model, write_video
from test_sequence_training import write_trend_store

HEADS = {"expr": 7, "va": 2}


# -- an architecture registered from outside the package: nothing in affectseq names it ---------------------------
@dataclass(frozen=True)
class ToyArgs:
    width: int = 6

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError("width must be >= 1")


@register_temporal("toy_running_mean", ToyArgs)
class ToyRunningMean(nn.Module):
    """Causal: step t outputs the mean over steps 0..t of a projection (no step(): streamed by re-running)."""

    causal = True

    def __init__(self, input_size: int, args: ToyArgs):
        super().__init__()
        self.proj = nn.Linear(input_size, args.width)
        self.out_dim = args.width

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.proj(x)).cumsum(dim=1)
        return h / torch.arange(1, x.shape[1] + 1, device=x.device, dtype=h.dtype)[None, :, None]


# (arch, its args, causal)
ARCHS = [
    ("gru", {"hidden_sizes": [8]}, True),
    ("lstm", {"hidden_sizes": [8], "bidirectional": True}, False),
    ("tcn", {"channels": [8, 8], "kernel_size": 2}, True),
    ("transformer", {"d_model": 8, "heads": 2, "layers": 1, "ff_dim": 16}, True),
    ("transformer", {"d_model": 8, "heads": 2, "layers": 1, "ff_dim": 16, "causal": False}, False),
    ("toy_running_mean", {"width": 5}, True),
]


def test_builtin_archs_are_registered_and_unknown_names_are_refused_up_front() -> None:
    assert {"gru", "lstm", "tcn", "transformer", "toy_running_mean"} <= set(registered_archs())
    with pytest.raises(ConfigError, match=r"unknown temporal architecture 'tnc'; registered: .*gru, lstm, tcn"):
        load_config(SequenceTrainConfig, overrides=["model.arch=tnc"])
    with pytest.raises(ConfigError, match=r"model\.arch=tcn: .*hidden_sizes"):  # a GRU argument given to a TCN
        load_config(SequenceTrainConfig, overrides=["model.arch=tcn", "model.hidden_sizes=[8]"])
    with pytest.raises(ConfigError, match="divisible"):
        load_config(SequenceTrainConfig, overrides=["model.arch=transformer", "model.d_model=10", "model.heads=4"])


def test_cell_still_means_arch_and_configs_load_back() -> None:
    old = load_config(SequenceTrainConfig, overrides=["model.cell=lstm", "model.hidden_sizes=[16,8]"])
    assert old.model.arch == "lstm" and old.model.args == {"hidden_sizes": [16, 8], "bidirectional": False,
                                                           "dropout": 0.0}
    assert old.model == SequenceModelConfig(cell="lstm", hidden_sizes=(16, 8))
    saved = config_to_dict(old)
    assert saved["model"] == {"arch": "lstm", "args": old.model.args, "mask_channel": True}
    assert load_config(SequenceTrainConfig, overrides=saved) == old
    tcn = load_config(SequenceTrainConfig, overrides=["model.arch=tcn", "model.kernel_size=5"])
    assert tcn.model.args["kernel_size"] == 5 and tcn.model.args["channels"] == [64, 64, 64, 64]
    with pytest.raises(ConfigError, match="disagree"):
        load_config(SequenceTrainConfig, overrides=["model.cell=gru", "model.arch=tcn"])


def test_bundle_header_names_the_arch_with_its_args_and_mode_once(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TemporalModel(5, HEADS, TemporalConfig(arch="tcn", channels=(4,), mode="seq2seq"))
    path = save_sequence_checkpoint(tmp_path / "tcn.safetensors", model, {"mode": "seq2seq", "window": 8,
                                                                          "tasks": ["expr", "va"]})
    header = read_sequence_header(path)
    assert header["mode"] == "seq2seq"
    assert header["model_config"] == {"arch": "tcn", "args": {"channels": [4], "kernel_size": 3, "dropout": 0.1},
                                      "mask_channel": True}
    bad = {**header, "model_config": {**header["model_config"], "arch": "wavenet"}}
    with pytest.raises(InputError, match="unknown temporal architecture 'wavenet'; registered: .*gru"):
        build_temporal_model(bad, path)
    bad = {**header, "model_config": {**header["model_config"], "args": {"channels": [4], "width": 3}}}
    with pytest.raises(InputError, match="width"):
        build_temporal_model(bad, path)


def test_a_bundle_written_before_the_registry_still_loads(tmp_path: Path) -> None:
    """GRU bundles recorded ``model_config: {cell, hidden_sizes, ..., mode}`` and tensors ``temporal.rnns.*``."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = TemporalModel(5, HEADS, TemporalConfig(cell="gru", hidden_sizes=(6, 4), mode="seq2seq")).eval()
    new = save_sequence_checkpoint(tmp_path / "new.safetensors", model, {"mode": "seq2seq", "window": 8,
                                                                          "tasks": ["expr", "va"]})
    with safe_open(str(new), framework="pt") as fh:
        header = json.loads(fh.metadata()["affectseq"])
        tensors = {k.replace("temporal.backbone.", "temporal."): fh.get_tensor(k) for k in fh.keys()}
    header["model_config"] = {"cell": "gru", "hidden_sizes": [6, 4], "bidirectional": False, "dropout": 0.0,
                              "mode": "seq2seq", "mask_channel": True}
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={"affectseq": json.dumps(header)})
    assert any(k.startswith("temporal.rnns.") for k in tensors)

    bundle = load_sequence_bundle(old)
    assert bundle.header["model_config"]["arch"] == "gru"
    x, m = torch.randn(2, 7, 5), torch.rand(2, 7) > 0.2
    torch.testing.assert_close(bundle.temporal_model(x, m), model(x, m))
    header["model_config"]["mode"] = "seq2one"  # the old header's two modes disagreeing
    save_file(tensors, str(old), metadata={"affectseq": json.dumps(header)})
    with pytest.raises(InputError, match="differs from the header's mode"):
        load_sequence_bundle(old)


@pytest.mark.parametrize("arch,args,causal", [a for a in ARCHS if a[2]], ids=lambda v: str(v))
def test_stepping_a_causal_model_equals_its_batch_forward(arch: str, args: dict, causal: bool) -> None:
    torch.manual_seed(0)
    model = TemporalModel(5, HEADS, TemporalConfig(arch=arch, args=args, mode="seq2seq")).eval()
    assert model.causal
    x, m = torch.randn(2, 9, 5), torch.rand(2, 9) > 0.3
    full = model(x, m)
    state = model.init_state(2)
    for t in range(9):
        out, state = model.step(x[:, t], m[:, t], state)
        for task in HEADS:
            torch.testing.assert_close(out[task], full[task][:, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch,args,causal", [a for a in ARCHS if a[0] in ("tcn", "transformer")],
                         ids=lambda v: str(v))
@pytest.mark.parametrize("mode", ["seq2one", "seq2seq", "clip"])
def test_outputs_ignore_values_at_masked_frames(arch: str, args: dict, causal: bool, mode: str) -> None:
    torch.manual_seed(0)
    model = TemporalModel(5, HEADS, TemporalConfig(arch=arch, args=args, mode=mode)).eval()
    assert model.causal == causal
    x, m = torch.randn(3, 8, 5), torch.rand(3, 8) > 0.4
    x2 = x.clone()
    x2[~m] = float("nan")
    out = model(x, m)
    lead = (3, 8) if mode == "seq2seq" else (3,)
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: lead + (n,) for k, n in HEADS.items()}
    for task, value in model(x2, m).items():
        torch.testing.assert_close(value, out[task])
    if not causal:
        with pytest.raises(ValueError, match="cannot stream"):
            model.init_state()


@pytest.fixture(scope="module")
def frame_and_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("registry")
    frame = save_tiny_frame_model(tmp / "frame.safetensors")
    video = write_video(tmp / "ramp.mp4", gray_frames(list(np.linspace(10, 240, 16).astype(int))))
    return frame, video


@pytest.mark.parametrize("arch,args,causal", ARCHS, ids=lambda v: str(v))
def test_each_arch_trains_on_a_store_and_runs_in_predict(tmp_path: Path, frame_and_video: tuple[Path, Path],
                                                         arch: str, args: dict, causal: bool) -> None:
    from affectseq.io.video import VideoReader
    from affectseq.predict.model import load_model
    from affectseq.predict.pipeline import PredictOptions, predict_video_table
    from affectseq.predict.streaming import LivePredictor

    frame, video = frame_and_video
    store = write_trend_store(tmp_path / "store", n_videos=4, n_frames=30, frame_checkpoint=str(frame),
                              feature_dim=96)
    config = load_config(SequenceTrainConfig, overrides={
        "mode": "seq2seq", "window": 6, "epochs": 1, "batch_size": 8, "task": "multi", "device": "cpu",
        "model": {"arch": arch, **args}})
    result = train_sequence(store, tmp_path / "run", config, progress=False)
    assert result.best_epoch == 1 and np.isfinite(result.history[0]["train_loss"])
    header = read_sequence_header(tmp_path / "run" / "checkpoint_best.safetensors")
    assert header["model_config"]["arch"] == arch and header["model_config"]["args"] == config.model.args

    bundle = load_model(tmp_path / "run", device="cpu")
    assert bundle.info.temporal.startswith(arch.upper()) and bundle.causal_ok == causal
    present = lambda f, i: f not in (4, 5)  # noqa: E731
    box = {1: (8.0, 8.0, 72.0, 72.0)}
    for mode in ("offline", "causal") if causal else ("offline",):
        table = predict_video_table(video, bundle, PredictOptions(mode=mode, progress=False),
                                    face_source=ScriptedFaces(box, present), aligner=box_crops).table
        faces = table[table.face_id.notna()]
        assert len(faces) == 14 and np.isfinite(faces.filter(like="prob_").to_numpy()).all()
    if not causal:
        with pytest.raises(ConfigError):
            predict_video_table(video, bundle, PredictOptions(mode="causal", progress=False),
                                face_source=ScriptedFaces(box, present), aligner=box_crops)
        return
    # The causal rows of predict (last table) and of LivePredictor are the same rows.
    expected = faces.set_index("frame_idx")
    live = LivePredictor(bundle, ScriptedFaces(box, present), aligner=box_crops)
    n_rows = 0
    for f in VideoReader(video):
        for row in live.process(f.frame_idx, f.time_sec, f.rgb):
            ref = expected.loc[row["frame_idx"]]
            np.testing.assert_allclose(row["expr_prob"], ref.filter(like="prob_").to_numpy(float), atol=1e-5)
            np.testing.assert_allclose(row["va"], ref[["valence", "arousal"]].to_numpy(float), atol=1e-5)
            n_rows += 1
    assert n_rows == 14


@pytest.mark.slow  # ~30 s each on 2 loaded cores
@pytest.mark.parametrize("arch,args", [("tcn", {"channels": [16, 16, 16], "kernel_size": 3, "dropout": 0.0}),
                                       ("transformer", {"d_model": 16, "heads": 2, "layers": 1, "ff_dim": 32,
                                                        "dropout": 0.0})])
def test_tcn_and_transformer_learn_the_temporal_trend_too(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
                                                          arch: str, args: dict) -> None:
    """The GRU's test (test_sequence_training.py): a frame's label is the direction of a sine, which one frame
    cannot show; a temporal model over the 12 frames before it can."""
    from test_sequence_training import FAST, _accuracy

    store = write_trend_store(tmp_path_factory.mktemp(f"trend_{arch}"))
    config = load_config(SequenceTrainConfig, overrides={**FAST, "window": 12, "task": "expr", "device": "cpu",
                                                         "model": {"arch": arch, **args}})
    train_sequence(store, tmp_path / arch, config, progress=False)
    assert _accuracy(tmp_path / arch) > 0.85  # chance: 0.5 (a one-frame model stays below 0.7 there)


def test_an_unknown_name_loads_the_entry_point_plugins_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from affectseq.models import registry

    class Point:
        name = "plugin"

        def load(self):  # what importing a plug-in's module does: register its architecture
            register_temporal("plugin_arch", ToyArgs)(ToyRunningMean)

    calls = []
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: calls.append(group) or [Point()])
    monkeypatch.setattr(registry, "_ENTRY_POINTS_LOADED", False)
    assert registry.get_arch("plugin_arch").args_type is ToyArgs
    assert calls == [registry.ENTRY_POINT_GROUP]
    with pytest.raises(ConfigError, match="registered: .*plugin_arch"):
        registry.get_arch("still_unknown")
    assert calls == [registry.ENTRY_POINT_GROUP]  # looked up once per process
