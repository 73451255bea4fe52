"""Canonical label spaces shared by every stage of affectseq.

Every dataset adapter maps its own encoding into these spaces:

* expressions: the Aff-Wild2 EXPR order ``EXPR_CLASSES_7`` (ABAW 2020) or
  ``EXPR_CLASSES_8`` (ABAW 3 onwards, adds ``Other``); integer labels index
  these tuples, ``EXPR_UNANNOTATED`` (-1) marks a frame without a label;
* valence/arousal: two floats in [-1, 1] (``VA_DIMS``), NaN when unannotated;
* action units: ``AU_NAMES``, the union (13 AUs) of every ABAW edition's AU set,
  one 0/1 value each, ``AU_UNANNOTATED`` (-1) when the AU is not annotated.
"""

from __future__ import annotations

from typing import Mapping, Sequence

EXPR_CLASSES_7: tuple[str, ...] = (
    "Neutral",
    "Anger",
    "Disgust",
    "Fear",
    "Happiness",
    "Sadness",
    "Surprise",
)
EXPR_CLASSES_8: tuple[str, ...] = EXPR_CLASSES_7 + ("Other",)
# FER+'s eight emotions in the canonical order: the seven basic ones plus Contempt as its own class.
# Aff-Wild2's 8th class "Other" is a catch-all (any affect outside the seven); contempt is one thing it
# covers, so a FER+ model's Contempt maps to Other when scored on ABAW, never the reverse.
EXPR_CLASSES_FERPLUS: tuple[str, ...] = EXPR_CLASSES_7 + ("Contempt",)
EXPR_UNANNOTATED = -1

VA_DIMS: tuple[str, ...] = ("valence", "arousal")
VA_RANGE: tuple[float, float] = (-1.0, 1.0)

AU_NAMES_ABAW2020: tuple[str, ...] = ("AU1", "AU2", "AU4", "AU6", "AU12", "AU15", "AU20", "AU25")
AU_NAMES_ABAW3: tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24", "AU25", "AU26",
)
AU_NAMES: tuple[str, ...] = tuple(
    sorted(set(AU_NAMES_ABAW2020) | set(AU_NAMES_ABAW3), key=lambda name: int(name[2:]))
)
AU_UNANNOTATED = -1

# Datasets spell the same emotion many ways; this is the one lookup every adapter uses.
_EXPR_SYNONYMS: dict[str, str] = {
    "neutral": "Neutral",
    "anger": "Anger",
    "angry": "Anger",
    "disgust": "Disgust",
    "disgusted": "Disgust",
    "fear": "Fear",
    "fearful": "Fear",
    "afraid": "Fear",
    "happiness": "Happiness",
    "happy": "Happiness",
    "joy": "Happiness",
    "sadness": "Sadness",
    "sad": "Sadness",
    "surprise": "Surprise",
    "surprised": "Surprise",
    "other": "Other",
    "contempt": "Other",
}


def expr_classes(num_classes: int) -> tuple[str, ...]:
    """Return the canonical class names for a 7- or 8-class expression space."""
    if num_classes == 7:
        return EXPR_CLASSES_7
    if num_classes == 8:
        return EXPR_CLASSES_8
    raise ValueError(f"expression label space must have 7 or 8 classes, got {num_classes}")


def canonical_expr_name(name: str) -> str | None:
    """Map a dataset's class name (any case, common synonyms) to a canonical name.

    Classes outside the basic expressions (e.g. AffectNet's ``Contempt``) map to
    ``"Other"``; the caller drops them when its label space has no ``Other``.
    Returns ``None`` for names that are not emotions at all.
    """
    return _EXPR_SYNONYMS.get(name.strip().lower())


def expr_index(name: str, num_classes: int = 8) -> int | None:
    """Index of ``name`` in the canonical ``num_classes`` space, or ``None`` if it has no place there."""
    canonical = canonical_expr_name(name)
    classes = expr_classes(num_classes)
    if canonical is None or canonical not in classes:
        return None
    return classes.index(canonical)


def remap_labels(mapping: Mapping[int, int | None]) -> dict[int, int]:
    """Drop ``None`` targets from a dataset-specific ``{own_label: canonical_label}`` mapping."""
    return {src: dst for src, dst in mapping.items() if dst is not None}


def class_index_map(model_classes: Sequence[str], data_classes: Sequence[str]) -> list[int | None]:
    """For each class of ``data_classes``, the column of ``model_classes`` that predicts it (or ``None``).

    Classes match by name; a model's ``Contempt`` stands in for a dataset's
    ``Other`` when the model has no ``Other`` (contempt is one of the affects
    Aff-Wild2's catch-all class covers). Used to score a model on a dataset whose
    label space differs (an 8-class FER+ model on FER2013's 7 classes).
    """
    model_classes = list(model_classes)
    out: list[int | None] = []
    for name in data_classes:
        if name in model_classes:
            out.append(model_classes.index(name))
        elif name == "Other" and "Contempt" in model_classes:
            out.append(model_classes.index("Contempt"))
        else:
            out.append(None)
    return out
