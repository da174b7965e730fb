"""What a prediction returns: one :class:`ImagePrediction` per input, holding its faces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Box = tuple[int, int, int, int]


@dataclass
class FacePrediction:
    """One face: its box ``(x, y, w, h)`` in the image, the top emotion and all probabilities."""

    box: Box
    emotion: str
    probabilities: dict[str, float]

    @property
    def confidence(self) -> float:
        """Probability of the predicted emotion."""
        return self.probabilities[self.emotion]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"box": list(self.box), "emotion": self.emotion,
                "confidence": round(self.confidence, 6),
                "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()}}


@dataclass
class ImagePrediction:
    """Result for one input image.

    ``faces`` is empty when no face was found (``note`` says so) or when the image could not
    be processed (``error`` names the file and the problem). ``annotated`` is the path of the
    annotated copy when one was written; ``detector`` names the detector that looked (None
    when the whole image was taken as the face); ``aligner`` the eye finder that levelled the
    faces (None when they were not levelled).
    """

    source: str
    faces: list[FacePrediction] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    note: str | None = None
    error: str | None = None
    annotated: str | None = None
    detector: str | None = None
    aligner: str | None = None

    @property
    def ok(self) -> bool:
        """True when the image was read and classified (whether or not it holds a face)."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {"source": self.source, "width": self.width,
                               "height": self.height,
                               "faces": [f.to_dict() for f in self.faces]}
        for key in ("detector", "aligner", "note", "error", "annotated"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out
