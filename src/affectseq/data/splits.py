"""Split names: the one alias table for ``train`` / ``validation`` / ``test``.

Datasets spell their splits in many ways -- ``Train_Set``/``Validation_Set`` (ABAW),
``PublicTest``/``PrivateTest`` (FER2013's own usage columns), ``val``/``valid`` (image
folders). Every stage that reads a split name (frame training's data, the feature
store's per-task splits, the paper study, ``evaluate-model``) maps it through
:func:`normalise_split`, so a name means the same role everywhere.
"""

from __future__ import annotations

from typing import Iterable

from affectseq.errors import InputError

SPLIT_ROLES: tuple[str, ...] = ("train", "validation", "test")

# Spellings (lower-cased, "_set"/"set" suffix removed) -> role. FER2013's PublicTest is the
# split everyone validates on, PrivateTest the one reported as test.
_ALIASES: dict[str, str] = {
    "training": "train", "val": "validation", "valid": "validation", "publictest": "validation",
    "privatetest": "test",
}


def normalise_split(name: str) -> str:
    """``train``, ``validation`` or ``test`` for any spelling of them; other names lower-cased.

    Case, a ``_set``/``Set`` suffix and surrounding ``_``/``-``/spaces are ignored:
    ``Train_Set`` and ``Training`` -> ``train``; ``Validation_Set``, ``val``, ``valid``,
    ``PublicTest`` -> ``validation``; ``Test_Set``, ``PrivateTest`` -> ``test``;
    ``Extra_Set`` -> ``extra``.
    """
    key = name.lower().removesuffix("_set").removesuffix("set").strip("_- ")
    return _ALIASES.get(key, key)


def split_role(name: str) -> str:
    """``train``, ``validation`` or ``test`` for a split name or alias; InputError for any other name."""
    role = normalise_split(name)
    if role not in SPLIT_ROLES:
        raise InputError(name, "cannot tell whether this split is train, validation or test")
    return role


def find_split(available: Iterable[str], role: str) -> str | None:
    """The name among ``available`` that plays ``role`` (``train``/``validation``/``test``), or None.

    When several names play it (``val`` and ``validation``), the one spelled exactly as the
    role wins, then the first in sorted order, so the choice never depends on listing order.
    """
    candidates = sorted(a for a in available if normalise_split(a) == role)
    exact = [a for a in candidates if a.lower() == role]
    return (exact or candidates or [None])[0]
