"""Emotions over time in a video: faces on every Nth frame, a CSV timeline, an annotated copy.

Any container and codec the installed OpenCV reads works. Frames that cannot be decoded,
stretches without a face and a file that ends before the frame count its header declares are
counted and reported, never fatal.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from feraug.errors import DataError
from feraug.io import atomic_write_bytes
from feraug.predict.align import EyeFinder, get_eye_finder
from feraug.predict.annotate import annotate
from feraug.predict.api import classify_faces, prepare_faces, resolve_tta
from feraug.predict.crop import MARGIN
from feraug.predict.detect import Detector, detector_name, get_detector
from feraug.predict.model import ModelSpec, resolve_model
from feraug.predict.results import ImagePrediction

#: File suffixes ``feraug predict`` treats as videos (anything else goes to the image reader).
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg",
                            ".wmv", ".flv", ".3gp", ".ts"})
#: Consecutive failed reads after which the stream is taken to have ended.
MAX_FAILED_READS = 25
#: Frame rate assumed when the container does not declare one.
FALLBACK_FPS = 25.0


def is_video(path: str | Path) -> bool:
    """True when ``path`` has a video file suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoPrediction:
    """The timeline of one video: one row per face on every sampled frame (a row with an empty
    ``face`` for a sampled frame without one) and what went wrong on the way."""

    source: str
    classes: list[str]
    every: int
    fps: float = 0.0
    frames_declared: int = 0
    frames_read: int = 0
    frames_sampled: int = 0
    frames_with_face: int = 0
    unreadable_frames: int = 0
    truncated: bool = False
    detector: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    csv_path: str | None = None
    annotated: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file opened as a video and at least one frame was read."""
        return self.error is None

    def columns(self) -> list[str]:
        """CSV header: frame, time, face, box, emotion, confidence, one column per class."""
        return ["frame", "time_s", "face", "x", "y", "w", "h", "emotion", "confidence",
                *(f"p_{c}" for c in self.classes)]

    def csv_text(self) -> str:
        """The timeline as CSV text."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns(), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buf.getvalue()

    def summary(self) -> str:
        """One line: what was read, sampled and found, and any trouble."""
        if self.error:
            return self.error
        text = (f"{self.source}: {self.frames_read} frame(s) read at {self.fps:g} fps, "
                f"{self.frames_sampled} sampled (every {self.every}), "
                f"{self.frames_with_face} with a face")
        return "; ".join([text, *self.notes])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the rows included)."""
        keys = ("source", "every", "fps", "frames_declared", "frames_read", "frames_sampled",
                "frames_with_face", "unreadable_frames", "truncated", "detector", "notes",
                "error", "csv_path", "annotated")
        return {**{k: getattr(self, k) for k in keys}, "timeline": self.rows}


def _rows(frame: int, time_s: float, pred: ImagePrediction) -> list[dict[str, Any]]:
    if not pred.faces:
        return [{"frame": frame, "time_s": round(time_s, 3), "face": ""}]
    rows = []
    for i, face in enumerate(pred.faces, start=1):
        x, y, w, h = face.box
        row = {"frame": frame, "time_s": round(time_s, 3), "face": i, "x": x, "y": y,
               "w": w, "h": h, "emotion": face.emotion,
               "confidence": round(face.confidence, 6)}
        row.update({f"p_{c}": round(p, 6) for c, p in face.probabilities.items()})
        rows.append(row)
    return rows


class _AnnotatedWriter:
    """Writes the annotated copy under a temporary name and moves it into place at the end,
    so that an interrupted run never leaves a half-written file under the final name."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.stem}.partial{path.suffix}")
        self.writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                      size)
        if not self.writer.isOpened():
            raise DataError(f"{path}: OpenCV cannot write an mp4v video here")

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))

    def commit(self) -> None:
        """Finish the file and give it its final name."""
        self.writer.release()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        """Drop the partial file (an interrupted run leaves nothing under the final name)."""
        self.writer.release()
        self.partial.unlink(missing_ok=True)


def _read(capture: cv2.VideoCapture,
          result: VideoPrediction) -> tuple[int, np.ndarray] | None:
    """(index, frame) of the next decodable frame, skipping and counting undecodable ones;
    None at the end of the stream."""
    failed = 0
    while failed < MAX_FAILED_READS:
        index = result.frames_read + result.unreadable_frames + failed
        ok, frame = capture.read()
        if ok and frame is not None and frame.size:
            # Some backends drop a corrupt packet without a failed read and report the
            # position they reached; trust it only for a plausible jump (a position derived
            # from timestamps can leap on variable-frame-rate clips). FFmpeg counts decoded
            # frames only, so there this never fires.
            position = int(capture.get(cv2.CAP_PROP_POS_FRAMES)) - 1
            plausible = position - index <= MAX_FAILED_READS and (
                not result.frames_declared or position < result.frames_declared)
            if index < position and plausible:
                failed += position - index
                index = position
            result.unreadable_frames += failed
            return index, frame
        failed += 1
        if result.frames_declared and index + 1 >= result.frames_declared:
            break  # at the declared end: an ordinary end of stream
    return None


def _finish(result: VideoPrediction) -> None:
    if result.frames_read == 0:
        result.error = f"{result.source}: no frame could be decoded"
        return
    missing = result.frames_declared - result.frames_read - result.unreadable_frames
    if result.frames_declared and missing > 0:
        result.truncated = True
        result.notes.append(f"stream ends after {result.frames_read} of "
                            f"{result.frames_declared} declared frames (truncated file?)")
    if result.unreadable_frames:
        result.notes.append(f"{result.unreadable_frames} frame(s) could not be decoded")
    if result.frames_sampled and not result.frames_with_face:
        result.notes.append(f"no face found on any sampled frame (detector {result.detector})")


def predict_video(path: str | Path, model: ModelSpec = None, *, every: int = 10,
                  tta: bool | str | None = None, detector: str | Detector = "auto",
                  out: str | Path | None = None, margin: float = MARGIN,
                  device: str = "cpu", used: set[str] | None = None,
                  detect: bool = True, align: str | EyeFinder | None = None,
                  ) -> VideoPrediction:
    """Predict the emotion of every face on every ``every``-th frame of a video.

    ``detect=False`` classifies each whole frame as one face (videos of face crops);
    ``align`` levels each face by its eyes first (as in :func:`feraug.predict.predict`).
    ``used`` collects the names already written into ``out`` by this run, so that several
    videos with the same name get ``clip.mp4``, ``clip_2.mp4`` ...

    Returns a :class:`VideoPrediction` whose ``rows`` are the timeline (frame, time in
    seconds, face number, box, emotion, probabilities). With ``out`` (an existing folder),
    ``<stem>.csv`` and an annotated ``<stem>.mp4`` (every frame, each showing the latest
    sampled frame's faces) are written there. A file OpenCV cannot open gives a result with
    ``error`` set; unreadable frames and a truncated stream are counted in ``notes``.
    """
    if every < 1:
        raise DataError(f"--every must be at least 1, got {every}")
    loaded = resolve_model(model, device)
    mode = resolve_tta(tta, loaded)
    det = get_detector(detector) if detect else None
    eyes = get_eye_finder(align)
    result = VideoPrediction(source=str(path), classes=list(loaded.classes), every=every,
                             detector=detector_name(det) if det is not None else None)
    capture = cv2.VideoCapture(str(path))
    if not Path(path).is_file() or not capture.isOpened():
        why = "file does not exist" if not Path(path).exists() else "not a video OpenCV can read"
        result.error = f"{path}: {why}"
        return result
    fps = capture.get(cv2.CAP_PROP_FPS)
    result.fps = round(fps, 3) if fps and fps > 0 else FALLBACK_FPS
    result.frames_declared = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    used = set() if used is None else used
    stem = _free_stem(Path(path).stem or "video", used, out)
    writer: _AnnotatedWriter | None = None
    latest = ImagePrediction(source=str(path))
    failed = 0
    try:
        while (item := _read(capture, result)) is not None:
            index, frame = item
            result.frames_read += 1
            if index % every == 0:
                try:
                    pending = [prepare_faces(f"{path}#{index}", frame, det,
                                             result.detector or "", loaded.image_size, margin,
                                             eyes)]
                    classify_faces(loaded, mode, pending)
                except (DataError, cv2.error):  # one bad frame is a note, not the end
                    failed += 1
                    continue
                latest = pending[0][0]
                result.frames_sampled += 1
                result.frames_with_face += bool(latest.faces)
                result.rows.extend(_rows(index, index / result.fps, latest))
            if out is not None:
                if writer is None:
                    writer = _AnnotatedWriter(Path(out) / f"{stem}.mp4", result.fps,
                                              (frame.shape[1], frame.shape[0]))
                writer.write(annotate(frame, latest) if latest.faces else frame)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        capture.release()
    if writer is not None:
        writer.commit()
        result.annotated = str(writer.path)
    if failed:
        result.notes.append(f"{failed} sampled frame(s) could not be classified")
    _finish(result)
    if out is not None and result.ok:
        csv_path = Path(out) / f"{stem}.csv"
        atomic_write_bytes(result.csv_text().encode(), csv_path)
        result.csv_path = str(csv_path)
    return result


def _free_stem(stem: str, used: set[str], out: str | Path | None) -> str:
    """A name for this video's ``.mp4`` and ``.csv`` that no earlier video of the run took and
    that names no file already in ``out`` (``clip``, ``clip_2`` ...)."""
    name, n = stem, 1
    while name in used or (out is not None and any(
            (Path(out) / f"{name}{suffix}").exists() for suffix in (".mp4", ".csv"))):
        n += 1
        name = f"{stem}_{n}"
    used.add(name)
    return name
