"""``feraug predict`` (emotions of the faces in photos) and ``feraug export`` (ONNX /
TorchScript)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from feraug.predict.results import ImagePrediction
    from feraug.predict.video import VideoPrediction

# see feraug.predict.detect (imported lazily: torch)
DETECTORS = ("auto", "haar", "dlib", "mtcnn")
# see feraug.predict.align
ALIGNERS = ("none", "eyes", "dlib", "haar")


class ExportFormat(StrEnum):
    """Export targets."""

    onnx = "onnx"
    torchscript = "torchscript"


def _table(results: list[ImagePrediction]) -> Table:
    table = Table(show_lines=False)
    for col in ("image", "face", "box x,y,w,h", "emotion", "prob.", "next"):
        table.add_column(col, overflow="fold")
    for r in results:
        if r.error:
            reason = r.error.removeprefix(f"{r.source}: ")
            table.add_row(r.source, "", "", f"[red]error: {reason}[/red]", "", "")
        elif not r.faces:
            table.add_row(r.source, "-", "", f"[yellow]{r.note}[/yellow]", "", "")
        for i, face in enumerate(r.faces, start=1):
            ranked = sorted(face.probabilities.items(), key=lambda kv: -kv[1])
            runner = f"{ranked[1][0]} {ranked[1][1]:.0%}" if len(ranked) > 1 else ""
            table.add_row(r.source if i == 1 else "", str(i), ", ".join(map(str, face.box)),
                          f"[bold]{face.emotion}[/bold]", f"{face.confidence:.0%}", runner)
    return table


def predict_command(
    paths: Annotated[list[Path], typer.Argument(
        help="Image files, folders (walked recursively for images) and/or video files.")],
    model: Annotated[Path | None, typer.Option(
        "--model", "-m", help="Classifier checkpoint (default: the model bundled with feraug).")
    ] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write annotated PNG copies, and per video a CSV timeline and an "
        "annotated MP4, here (a new or empty folder).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")
                       ] = False,
    detect: Annotated[bool, typer.Option(
        "--detect/--no-detect",
        help="Detect faces, or treat each whole image as one face (pre-cropped data).")] = True,
    tta: Annotated[bool | None, typer.Option(
        "--tta/--no-tta", help="Test-time augmentation (default: the checkpoint's setting).")
    ] = None,
    detector: Annotated[str, typer.Option(
        "--detector", help=f"Face detector: {', '.join(DETECTORS)}. auto = dlib or mtcnn "
        "when installed (pip install 'feraug\\[detect]'), with Haar as the fallback.")] = "auto",
    align: Annotated[str, typer.Option(
        "--align", help="Level each face by its eyes before classifying it: "
        f"{', '.join(ALIGNERS)}. eyes = dlib's landmarks when installed "
        "(pip install 'feraug\\[align]'), else OpenCV's eye cascade.")] = "none",
    every: Annotated[int, typer.Option(
        "--every", min=1, help="Videos: look at every Nth frame.")] = 10,
    device: Annotated[str, typer.Option("--device", help="torch device, e.g. cpu or cuda.")
                      ] = "cpu",
) -> None:
    """Predict the emotion of every face in photos and videos.

    An image without a face is listed with a note. An unreadable file is reported by name
    and the others still run. A video (any format OpenCV reads) gives a timeline of every
    Nth frame (--every): frame, time, face, box, emotion, probabilities; printed as CSV when it
    is the only input, else written to --out with an annotated copy. Unreadable frames, frames
    without a face and a truncated file are reported, not fatal. Exit code: 0 when at least
    one input was processed (even if others failed or held no face), 1 when none could be, 2
    for a usage error (bad model, --out folder not empty, unknown detector).
    """
    from feraug.errors import ConfigError
    from feraug.io import prepare_output_dir, refuse_output_inside
    from feraug.predict.align import eye_finder_name, get_eye_finder
    from feraug.predict.api import predict, resolve_tta
    from feraug.predict.detect import detector_name, get_detector
    from feraug.predict.model import resolve_model
    from feraug.predict.sources import expand_paths
    from feraug.predict.video import is_video, predict_video

    videos = [p for p in paths if is_video(p) and not p.is_dir()]
    images = [p for p in paths if p not in videos]
    csv_to_stdout = bool(videos) and out is None and not as_json
    if csv_to_stdout and len(paths) > 1:
        raise ConfigError("a video among several inputs: give --out (each video's timeline is "
                          "written there) or --json")
    if out is not None:
        refuse_output_inside(out, [p for p in paths if p.is_dir()], "the input folder")
        prepare_output_dir(out)
    loaded = resolve_model(model, device)
    mode = resolve_tta(tta, loaded)
    det = get_detector(detector)
    eyes = get_eye_finder(align)
    items = expand_paths(list(images))
    results = predict(items, loaded, detect, mode, det, out=out, device=device,
                      progress=len(items) >= 50 and sys.stderr.isatty(),
                      align=eyes) if items else []
    used: set[str] = set()  # one namespace for every video's .mp4/.csv in --out
    clips = [predict_video(v, loaded, every=every, tta=mode, detector=det, out=out,
                           device=device, used=used, detect=detect, align=eyes)
             for v in videos]
    n_ok = sum(r.ok for r in results) + sum(c.ok for c in clips)
    det_name = detector_name(det) if detect else None
    if as_json:
        doc = {"model": str(model) if model else "default", "tta": mode, "detector": det_name,
               "aligner": eye_finder_name(eyes),
               "images": [r.to_dict() for r in results],
               "videos": [c.to_dict() for c in clips]}
        typer.echo(json.dumps(doc, indent=2))
    else:
        _print_summary(results, clips, mode, det_name, out, csv_to_stdout)
    if n_ok == 0:
        sys.exit(1)  # SystemExit, not typer.Exit: main() runs click with standalone_mode=False


def _print_summary(results: list[ImagePrediction], clips: list[VideoPrediction], mode: str,
                   det_name: str | None, out: Path | None, csv_to_stdout: bool) -> None:
    """The image table and one line per video; a lone video's CSV goes to stdout and its
    summary to stderr, so that the output can be piped."""
    if results:
        console = Console()
        console.print(_table(results))
        faces = sum(len(r.faces) for r in results)
        n_ok = sum(r.ok for r in results)
        summary = (f"{len(results)} image(s): {faces} face(s), "
                   f"{sum(r.ok and not r.faces for r in results)} without a face, "
                   f"{len(results) - n_ok} unreadable (tta: {mode}, detector: {det_name})")
        if out is not None:
            summary += f"; annotated copies in {out}"
        console.print(summary)
    for clip in clips:
        if csv_to_stdout and clip.ok:
            typer.echo(clip.csv_text(), nl=False)
        line = clip.summary()
        if clip.csv_path:
            line += f"; timeline {clip.csv_path}, annotated video {clip.annotated}"
        typer.echo(line, err=csv_to_stdout or not clip.ok)


def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="Classifier checkpoint to export.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="onnx or torchscript.")
                   ] = ExportFormat.onnx,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output file (default: next to the checkpoint, .onnx / "
        ".torchscript.pt).")] = None,
) -> None:
    """Export a checkpoint to ONNX or TorchScript, checked against the original.

    The exported model takes normalised float input [N,1,C,C] and returns probabilities; a
    JSON sidecar (<out>.json) holds the classes and the preprocessing.
    """
    from feraug.export import export_model

    result = export_model(checkpoint, out, fmt.value)
    typer.echo(f"wrote {result.path} and {result.sidecar}")
    if result.checked:
        typer.echo(result.message)
    else:
        typer.secho(f"warning: {result.message}", fg=typer.colors.YELLOW, err=True)


def _help(func: object) -> str:
    """A docstring with each paragraph on one line (the help formatter re-wraps it)."""
    paras = (getattr(func, "__doc__", "") or "").strip().split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paras)


def register(app: typer.Typer) -> None:
    """Add ``predict`` and ``export`` to the CLI."""
    app.command("predict", help=_help(predict_command))(predict_command)
    app.command("export", help=_help(export_command))(export_command)
