"""Annotated copies of photos: a box and label per face, and a bar per emotion probability."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from feraug.io import atomic_write_bytes
from feraug.predict.results import FacePrediction, ImagePrediction

#: BGR colour per emotion (unknown class names are drawn white).
COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220),
    "disgust": (40, 150, 40),
    "fear": (170, 60, 170),
    "happy": (0, 210, 250),
    "sad": (200, 110, 30),
    "surprise": (0, 140, 255),
    "neutral": (190, 190, 190),
    "contempt": (140, 140, 0),
}
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _colour(emotion: str) -> tuple[int, int, int]:
    return COLOURS.get(emotion, (255, 255, 255))


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float,
          colour: tuple[int, int, int], thick: int, bg: tuple[int, int, int] | None) -> None:
    """Text with its baseline-left corner at ``org``, optionally on a filled background."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
    if bg is not None:
        cv2.rectangle(img, (org[0] - 2, org[1] - th - 3), (org[0] + tw + 2, org[1] + base),
                      bg, -1)
    cv2.putText(img, text, org, FONT, scale, colour, thick, cv2.LINE_AA)


def _panel_origin(box: tuple[int, int, int, int], pw: int, ph: int, W: int, H: int,
                  ) -> tuple[int, int] | None:
    """Top-left corner for a ``pw`` x ``ph`` panel right of the box, else left, below or
    above it; None when it fits nowhere outside the box."""
    x, y, w, h = box
    gap = 4
    clamp_y = min(max(0, y), H - ph)
    clamp_x = min(max(0, x), W - pw)
    if pw > W or ph > H:
        return None
    if x + w + gap + pw <= W:
        return x + w + gap, clamp_y
    if x - gap - pw >= 0:
        return x - gap - pw, clamp_y
    if y + h + gap + ph <= H:
        return clamp_x, y + h + gap
    if y - gap - ph >= 0:
        return clamp_x, y - gap - ph
    return None


def _layout(names: list[str], row: int) -> tuple[float, int, int, int, int, int]:
    """(font scale, thickness, label width, bar width, panel width, panel height)."""
    scale = row * 0.5 / 22.0
    thick = 1 if row < 26 else 2
    lw = max(cv2.getTextSize(n, FONT, scale, thick)[0][0] for n in names)
    bar_w = max(24, int(row * 4))
    return scale, thick, lw, bar_w, lw + bar_w + 14, row * len(names) + 6


def _bars(img: np.ndarray, face: FacePrediction, occupied: tuple[int, int, int, int]) -> None:
    """A panel beside the face box with one bar per class, the predicted one highlighted.
    About as tall as the face box (rows of 9 to 36 px), shrunk until it fits beside it
    (else drawn at the image's right edge)."""
    names = list(face.probabilities)
    H, W = img.shape[:2]
    row = int(np.clip(face.box[3] / (len(names) + 0.5), 9, 36))
    while True:
        scale, thick, lw, bar_w, pw, ph = _layout(names, row)
        origin = _panel_origin(occupied, pw, ph, W, H)
        if origin is not None or row <= 9:
            break
        row -= 1
    px, py = origin if origin is not None else (max(0, W - pw), max(0, min(face.box[1], H - ph)))
    region = img[py : py + ph, px : px + pw]
    region[:] = (region * 0.3).astype(np.uint8)  # darken behind the panel for contrast
    for i, name in enumerate(names):
        top = py + 3 + i * row
        colour = (255, 255, 255) if name == face.emotion else (185, 185, 185)
        base = top + (row + cv2.getTextSize(name, FONT, scale, thick)[0][1]) // 2
        cv2.putText(img, name, (px + 4, base), FONT, scale, colour, thick, cv2.LINE_AA)
        bx = px + lw + 10
        cv2.rectangle(img, (bx, top + 2), (bx + bar_w, top + row - 2), (90, 90, 90), 1)
        fill = int(round(face.probabilities[name] * bar_w))
        if fill > 0:
            cv2.rectangle(img, (bx, top + 2), (bx + fill, top + row - 2), _colour(name), -1)


def annotate(image: np.ndarray, prediction: ImagePrediction, bars: bool = True) -> np.ndarray:
    """A BGR copy of ``image`` with each face's box, ``emotion NN%`` label and (with ``bars``)
    a probability bar per class; an image without faces gets its note written on it."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    side = max(out.shape[:2])
    thick = max(1, side // 500)
    if not prediction.faces:
        note = (prediction.note or "no face").split(";")[0].split(" (")[0]
        scale = float(np.clip(out.shape[1] / 400.0, 0.35, 1.5))
        _text(out, note, (6, 8 + int(22 * scale)), scale, (255, 255, 255), thick, (0, 0, 0))
        return out
    for i, face in enumerate(prediction.faces, start=1):
        x, y, w, h = face.box
        colour = _colour(face.emotion)
        scale = float(np.clip(w / 240.0, 0.35, 2.0))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, max(2, thick, w // 80))
        label = f"{i}: {face.emotion} {face.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(label, FONT, scale, thick)
        ty = y - 6 if y - th - 8 >= 0 else y + h + th + 6
        _text(out, label, (x, ty), scale, (0, 0, 0), max(1, thick), colour)
        if bars:  # keep the panel off the box and its label
            top, bottom = min(y, ty - th - 3), max(y + h, ty + base)
            _bars(out, face, (x, top, max(w, tw + 2), bottom - top))
    return out


def unique_name(stem: str, used: set[str], suffix: str = ".png") -> str:
    """``stem + suffix``, or ``stem_2 + suffix`` ... when that name was already used."""
    name, n = f"{stem}{suffix}", 1
    while name in used:
        n += 1
        name = f"{stem}_{n}{suffix}"
    used.add(name)
    return name


def write_annotated(image: np.ndarray, prediction: ImagePrediction, out_dir: Path,
                    used: set[str]) -> Path:
    """Write the annotated copy as PNG into ``out_dir`` (names never collide); returns it."""
    stem = Path(prediction.source).stem if not prediction.source.startswith("array[") \
        else prediction.source.replace("[", "_").replace("]", "")
    path = Path(out_dir) / unique_name(stem or "image", used)
    ok, buf = cv2.imencode(".png", annotate(image, prediction))
    if not ok:  # pragma: no cover - PNG encoding of a uint8 BGR image does not fail
        raise RuntimeError(f"could not encode {path}")
    atomic_write_bytes(buf.tobytes(), path)
    return path
