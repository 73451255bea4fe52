"""Planning a synthetic set: names, splits, two-person videos, lengths, task coverage (no rendering)."""

from __future__ import annotations

from affectseq.config import load_config
from affectseq.data.synth import SynthConfig, plan_videos
from affectseq.data.synth.writer import SPLITS, TASKS


def test_plan_has_validation_two_person_and_varied_lengths() -> None:
    cfg = SynthConfig(n_videos=20, n_frames=100, frame_count_jitter=0.3, seed=3)
    plans = plan_videos(cfg)
    assert [p.index for p in plans] == list(range(20))
    assert len({p.name for p in plans}) == 20 and all(p.name.endswith("-25-320x256") for p in plans)
    assert sum(p.split == "Validation_Set" for p in plans) == 5  # val_fraction 0.25
    two = [p for p in plans if len(p.persons) == 2]
    assert len(two) == 3  # round(0.15 * 20)
    assert all([q.video_id for q in p.persons] == [f"{p.name}_left", f"{p.name}_right"] for p in two)
    lengths = [p.n_frames for p in plans]
    assert min(lengths) >= 70 and max(lengths) <= 130 and len(set(lengths)) > 10
    assert plan_videos(cfg) == plans  # deterministic


def test_every_split_keeps_every_task_even_with_low_coverage() -> None:
    cfg = load_config(SynthConfig, overrides=["n_videos=6", "seed=1", "annotation.task_coverage=[0.05, 0.05, 0.05]"])
    plans = plan_videos(cfg)
    for split in SPLITS:
        for task in TASKS:
            assert any(task in q.tasks for p in plans if p.split == split for q in p.persons), (split, task)


def test_a_single_video_is_train_only_and_single_person() -> None:
    (plan,) = plan_videos(SynthConfig(n_videos=1))
    assert plan.split == "Train_Set" and len(plan.persons) == 1 and plan.persons[0].side == ""
