"""The canonical emotion vocabulary and the mappings from each data set's own names/codes.

Every data set inside feraug uses *canonical indices*: position in :data:`EMOTIONS`.
The first seven match FER2013's label order (0=angry ... 6=neutral); ``contempt`` (CK+ only)
is index 7. A data set keeps its own subset of classes in ``FaceDataset.classes``; labels in a
data set are indices into that subset, so a 7-class FER model has a 7-way head.
"""

from __future__ import annotations

from feraug.errors import DataError

EMOTIONS: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
    "contempt",
)

#: FER2013 label order (the ``emotion`` column of the original CSV).
FER2013_CLASSES: tuple[str, ...] = EMOTIONS[:7]

#: Synonyms used by common data sets, all lower case.
SYNONYMS: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "an": "angry",
    "ang": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "di": "disgust",
    "dis": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "fe": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "ha": "happy",
    "hap": "happy",
    "sad": "sad",
    "sadness": "sad",
    "sa": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "su": "surprise",
    "sur": "surprise",
    "neutral": "neutral",
    "ne": "neutral",
    "neu": "neutral",
    "calm": "neutral",
    "contempt": "contempt",
    "co": "contempt",
}

#: JAFFE file-name codes (``KA.AN1.39.tiff``).
JAFFE_CODES: dict[str, str] = {
    "AN": "angry",
    "DI": "disgust",
    "FE": "fear",
    "HA": "happy",
    "NE": "neutral",
    "SA": "sad",
    "SU": "surprise",
}


def canonical(name: str, source: str = "label") -> str:
    """Return the canonical emotion for a data set's own class name (case-insensitive).

    Raises :class:`DataError` naming ``source`` when the name is unknown.
    """
    key = name.strip().lower()
    if key in SYNONYMS:
        return SYNONYMS[key]
    known = ", ".join(EMOTIONS)
    raise DataError(f"{source}: unknown emotion label {name!r} (known: {known} and synonyms)")


def canonical_sources(name: str, source: str = "sources") -> str:
    """A translator's sources as a user writes them: ``"any"`` (every emotion but the one
    made, in any case) or a canonical emotion; DataError naming ``source`` otherwise."""
    return "any" if name.strip().lower() == "any" else canonical(name, source)


def emotion_index(name: str) -> int:
    """Canonical index of a canonical emotion name."""
    return EMOTIONS.index(canonical(name))


def sort_classes(names: list[str] | set[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Order canonical emotion names by canonical index (stable class order for models)."""
    return tuple(sorted({canonical(n) for n in names}, key=EMOTIONS.index))
