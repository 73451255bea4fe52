"""The one split-name alias table (affectseq.data.splits) and the stages that read split names through it."""

from __future__ import annotations

import pytest

from affectseq.data.splits import SPLIT_ROLES, find_split, normalise_split, split_role
from affectseq.errors import InputError

SPELLINGS = {
    "train": ["train", "Train", "Train_Set", "TrainSet", "training", "Training_Set", " train- "],
    "validation": ["validation", "Validation_Set", "val", "Val_Set", "valid", "VALID", "PublicTest"],
    "test": ["test", "Test_Set", "PrivateTest", "privatetest"],
}


@pytest.mark.parametrize("role", SPLIT_ROLES)
def test_every_spelling_names_its_role(role: str) -> None:
    for name in SPELLINGS[role]:
        assert normalise_split(name) == role, name
        assert split_role(name) == role, name


def test_other_names_are_lower_cased_without_the_set_suffix() -> None:
    assert normalise_split("Extra_Set") == "extra"
    assert normalise_split("Fold3") == "fold3"


def test_split_role_refuses_names_without_a_role() -> None:
    with pytest.raises(InputError, match="cannot tell"):
        split_role("Extra_Set")


def test_find_split_picks_the_name_playing_the_role() -> None:
    abaw = ["Train_Set", "Validation_Set"]
    assert find_split(abaw, "train") == "Train_Set"
    assert find_split(abaw, "validation") == "Validation_Set"
    assert find_split(abaw, "test") is None
    fer = ["PrivateTest", "PublicTest", "Training"]
    assert (find_split(fer, "train"), find_split(fer, "validation"), find_split(fer, "test")) == \
        ("Training", "PublicTest", "PrivateTest")


def test_find_split_prefers_the_exact_role_name_whatever_the_order() -> None:
    assert find_split(["val", "validation", "valid"], "validation") == "validation"
    assert find_split(["validation", "val"], "validation") == "validation"
    assert find_split(["valid", "val"], "validation") == "val"  # no exact name: the first in sorted order


def test_extraction_and_training_agree_on_fer_spellings() -> None:
    """The copies disagreed: frame training read PublicTest as validation, feature extraction kept
    ``publictest`` as a split of its own (so a store's split and a training run's did not match)."""
    from affectseq.features.extract_jobs import normalise_split as store_split

    assert store_split("PublicTest") == "validation"
    assert store_split("PrivateTest") == "test"


def test_paper_study_accepts_every_training_spelling(tmp_path) -> None:
    """The paper study's own list lacked ``Training_Set`` (frame training accepted it): one table now."""
    from affectseq.experiments.arms import _pick_splits

    assert _pick_splits(["Training_Set", "Val_Set"], tmp_path) == ("Training_Set", "Val_Set")
    with pytest.raises(InputError, match="need a training and a validation split"):
        _pick_splits(["Train_Set", "Test_Set"], tmp_path)
