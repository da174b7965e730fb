"""The ``auto`` detector (best installed, Haar fallback) and video prediction: timelines,
annotated copies, faceless stretches, truncated and unreadable files, the CLI. Clips are
made here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_predict import face_photo

from feraug.predict import predict
from feraug.predict.detect import detector_name, get_detector
from feraug.predict.video import predict_video


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


LEARNED = _installed("dlib") or _installed("facenet_pytorch") or _installed("mtcnn")


def tilted_face(angle: float = 30.0) -> np.ndarray:
    """The drawn face rotated by ``angle`` degrees: Haar's frontal cascade misses it."""
    matrix = cv2.getRotationMatrix2D((200, 200), angle, 1.0)
    return cv2.warpAffine(face_photo(), matrix, (400, 400), borderValue=(40, 40, 40))


def test_auto_falls_back_to_haar_when_no_learned_detector_is_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in ("dlib", "mtcnn", "facenet_pytorch"):
        monkeypatch.setitem(sys.modules, mod, None)  # import fails as if not installed
    auto = get_detector("auto")
    assert detector_name(auto) == "haar"
    assert len(auto(face_photo())) == 1
    assert detector_name(get_detector("haar")) == "haar"
    res = predict(face_photo(), detector=auto, tta="none")[0]
    assert res.detector == "haar" and res.to_dict()["detector"] == "haar"


@pytest.mark.skipif(not LEARNED, reason="no learned face detector installed "
                    "(pip install 'feraug[detect]' gives dlib)")
def test_auto_finds_a_tilted_face_that_haar_misses() -> None:
    image = tilted_face()
    assert get_detector("haar")(image) == []
    auto = get_detector("auto")
    assert detector_name(auto).endswith("+haar")
    boxes = auto(image)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert 100 <= x + w / 2 <= 300 and 100 <= y + h / 2 <= 300
    blank = np.full((300, 300, 3), 128, np.uint8)
    assert auto(blank) == []


def write_clip(path: Path, n_face: int = 12, n_blank: int = 8, fps: float = 10.0) -> Path:
    """An MJPG clip: a face drifting right for ``n_face`` frames, then grey frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (400, 400))
    assert writer.isOpened()
    for i in range(n_face + n_blank):
        frame = face_photo() if i < n_face else np.full((400, 400, 3), 128, np.uint8)
        writer.write(np.roll(frame, 2 * i, axis=1))
    writer.release()
    return path


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.avi")


def test_video_timeline_and_annotated_copy(ckpt: Path, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    res = predict_video(clip, ckpt, every=4, tta="none", detector="haar", out=out)
    assert res.ok and not res.truncated and res.unreadable_frames == 0
    assert (res.frames_declared, res.frames_read, res.frames_sampled) == (20, 20, 5)
    assert res.fps == pytest.approx(10.0) and res.detector == "haar"
    assert res.frames_with_face == 3  # frames 0, 4, 8 hold the face; 12 and 16 are grey
    assert [r["frame"] for r in res.rows] == [0, 4, 8, 12, 16]
    assert [r["time_s"] for r in res.rows] == [0.0, 0.4, 0.8, 1.2, 1.6]
    assert [r["face"] for r in res.rows] == [1, 1, 1, "", ""]
    xs = [r["x"] for r in res.rows[:3]]
    assert xs[0] < xs[1] < xs[2]  # the box follows the face
    face_row = res.rows[0]
    probs = [face_row[f"p_{c}"] for c in res.classes]
    assert sum(probs) == pytest.approx(1.0, abs=1e-4)
    assert face_row["emotion"] == res.classes[int(np.argmax(probs))]
    lines = (out / "clip.csv").read_text().splitlines()
    assert lines[0].split(",")[:9] == ["frame", "time_s", "face", "x", "y", "w", "h",
                                      "emotion", "confidence"]
    assert len(lines) == 6 and res.csv_path == str(out / "clip.csv")
    copy = cv2.VideoCapture(str(out / "clip.mp4"))
    frames = []
    while (item := copy.read())[0]:
        frames.append(item[1])
    assert len(frames) == 20 and frames[0].shape == (400, 400, 3)
    original = cv2.VideoCapture(str(clip)).read()[1]
    assert np.abs(frames[0].astype(int) - original).mean() > 1  # boxes and bars drawn
    assert sorted(p.name for p in out.iterdir()) == ["clip.csv", "clip.mp4"]


def test_truncated_unreadable_and_faceless_videos_are_reported(ckpt: Path, clip: Path,
                                                               tmp_path: Path) -> None:
    data = clip.read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(data[: len(data) // 2])
    res = predict_video(truncated, ckpt, every=5, tta="none", detector="haar")
    assert res.ok and res.truncated and 0 < res.frames_read < 20
    assert any("truncated" in n for n in res.notes)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 50)
    bad = predict_video(garbage, ckpt, detector="haar")
    assert not bad.ok and str(garbage) in bad.error and bad.rows == []
    missing = predict_video(tmp_path / "missing.mp4", ckpt, detector="haar")
    assert "does not exist" in missing.error
    grey = write_clip(tmp_path / "grey.avi", n_face=0, n_blank=6)
    none = predict_video(grey, ckpt, every=2, tta="none", detector="haar")
    assert none.ok and none.frames_with_face == 0 and none.frames_sampled == 3
    assert any("no face" in n for n in none.notes)


def test_cli_video_csv_to_stdout_json_and_out(ckpt: Path, clip: Path, tmp_path: Path,
                                              run_cli) -> None:
    base = ["--model", ckpt, "--no-tta", "--detector", "haar", "--every", "5"]
    r = run_cli("predict", clip, *base)
    assert r.code == 0, r.stderr
    rows = r.stdout.strip().splitlines()
    assert rows[0].startswith("frame,time_s,face,") and len(rows) == 5
    assert "4 sampled" in r.stderr
    r = run_cli("predict", clip, clip, *base)
    assert r.code == 2 and "--out" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("predict", clip, *base, "--json")
    doc = json.loads(r.stdout)
    assert doc["images"] == [] and doc["detector"] == "haar"
    assert [row["frame"] for row in doc["videos"][0]["timeline"]] == [0, 5, 10, 15]
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), face_photo())
    out = tmp_path / "out"
    r = run_cli("predict", clip, photo, *base, "--out", out)
    assert r.code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["clip.csv", "clip.mp4", "face.png"]
    assert "timeline" in r.stdout and "1 face(s)" in r.stdout


def test_same_named_videos_and_existing_files_are_never_overwritten(
        ckpt: Path, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.csv").write_text("mine")
    other = tmp_path / "b"
    other.mkdir()
    second = write_clip(other / "clip.avi", n_face=2, n_blank=2)
    used: set[str] = set()
    a = predict_video(clip, ckpt, every=10, tta="none", detector="haar", out=out, used=used)
    b = predict_video(second, ckpt, every=10, tta="none", detector="haar", out=out, used=used)
    assert (out / "clip.csv").read_text() == "mine"
    assert (Path(a.annotated).name, Path(a.csv_path).name) == ("clip_2.mp4", "clip_2.csv")
    assert (Path(b.annotated).name, Path(b.csv_path).name) == ("clip_3.mp4", "clip_3.csv")
    whole = predict_video(clip, ckpt, every=5, tta="none", detect=False)
    assert whole.detector is None and [r["face"] for r in whole.rows] == [1, 1, 1, 1]
    import feraug.predict.video as video

    class Interrupted(Exception):
        pass

    calls: list[int] = []
    real_classify = video.classify_faces

    def interrupted(*args, **kwargs):  # the second sampled frame: the video file is open
        calls.append(1)
        if len(calls) == 2:
            raise Interrupted
        return real_classify(*args, **kwargs)

    monkeypatch.setattr(video, "classify_faces", interrupted)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with pytest.raises(Interrupted):
        predict_video(clip, ckpt, every=10, tta="none", detector="haar", out=fresh)
    assert list(fresh.iterdir()) == []  # no half-written video under any name


class _DroppingCapture:
    """A decoder that silently skips frames 2 and 3 (a corrupt packet): every read succeeds,
    only its position shows the gap."""

    def __init__(self) -> None:
        self.positions = iter([1, 2, 5, 6])
        self.pos = 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.pos = next(self.positions, None)
        if self.pos is None:
            return False, None
        return True, np.zeros((4, 4, 3), np.uint8)

    def get(self, prop: int) -> float:
        assert prop == cv2.CAP_PROP_POS_FRAMES
        return float(self.pos or 0)


def test_frame_numbers_follow_the_decoder_across_dropped_frames() -> None:
    """Frames the decoder drops without a failed read count as unreadable, and the frames
    after them keep their true numbers (so times in the timeline stay right)."""
    from feraug.predict.video import VideoPrediction, _read

    result = VideoPrediction(source="clip", classes=[], every=1, fps=10.0, frames_declared=6)
    capture, seen = _DroppingCapture(), []
    while (item := _read(capture, result)) is not None:
        seen.append(item[0])
        result.frames_read += 1
    assert seen == [0, 1, 4, 5]
    assert result.unreadable_frames == 2

    class Leaping(_DroppingCapture):  # a timestamp-derived position far beyond the stream
        def __init__(self) -> None:
            super().__init__()
            self.positions = iter([1, 10_000])

    result = VideoPrediction(source="clip", classes=[], every=1, fps=10.0, frames_declared=6)
    capture, seen = Leaping(), []
    while (item := _read(capture, result)) is not None:
        seen.append(item[0])
        result.frames_read += 1
    assert seen == [0, 1] and result.unreadable_frames == 0
