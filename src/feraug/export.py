"""Exporting a classifier checkpoint to TorchScript or ONNX, checked against the original.

The exported model takes float input that is already normalised, ``[N, 1, C, C]`` with
``C = crop_size or image_size`` and ``x = (pixel / 255 - mean) / std``, and returns class
probabilities ``[N, K]`` (softmax included). A JSON sidecar next to it (``<out>.json``)
records the classes and the preprocessing. Test-time augmentation is not part of the
exported graph: for ``flip`` average the probabilities of the image and its mirror image.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
from torch import nn

from feraug import __version__
from feraug.classifier.infer import MEAN, STD, predict_proba, to_model_input
from feraug.errors import ConfigError, FeraugError
from feraug.io import atomic_write_bytes, write_json
from feraug.models.checkpoint import LoadedClassifier, load_classifier

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
INPUT_NAME, OUTPUT_NAME = "input", "probabilities"
ONNX_OPSET = 17


class ProbabilityModel(nn.Module):
    """The classifier followed by a softmax: normalised images in, probabilities out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


@dataclass
class ExportResult:
    """Where the export went and whether its probabilities were checked."""

    path: Path
    sidecar: Path
    format: str
    checked: bool
    max_abs_diff: float | None
    message: str


def preprocessing(loaded: LoadedClassifier, fmt: str, source: str) -> dict:
    """The sidecar: classes and exactly how to prepare an input image."""
    side = loaded.crop_size or loaded.image_size
    return {
        "format": fmt,
        "source_checkpoint": source,
        "feraug_version": __version__,
        "model_name": loaded.model_name,
        "classes": list(loaded.classes),
        "image_size": loaded.image_size,
        "crop_size": loaded.crop_size,
        "mean": MEAN,
        "std": STD,
        "input": {"name": INPUT_NAME, "shape": ["N", 1, side, side], "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": ["N", len(loaded.classes)],
                   "meaning": "class probabilities (softmax applied), in 'classes' order"},
        "preprocessing": [
            "face crop -> 8-bit grayscale (OpenCV BGR2GRAY weights)",
            f"resize to image_size x image_size ({loaded.image_size} px; INTER_AREA when "
            "shrinking, INTER_LINEAR when enlarging)",
            f"centre crop to crop_size ({side} px)" if loaded.crop_size else "no crop",
            "x = (pixel / 255 - mean) / std",
        ],
        "tta": {"checkpoint_default": loaded.tta,
                "note": "not in the graph; for 'flip' average the probabilities of x and "
                        "x flipped left-right"},
    }


def _check_batch(loaded: LoadedClassifier, n: int) -> tuple[torch.Tensor, np.ndarray]:
    """A fixed random uint8 batch as normalised input, and the original's probabilities."""
    gen = torch.Generator().manual_seed(0)
    size = loaded.image_size
    u8 = torch.randint(0, 256, (n, 1, size, size), generator=gen, dtype=torch.uint8)
    expected = predict_proba(loaded.model, u8, loaded.crop_size, "none").numpy()
    return to_model_input(u8, loaded.crop_size).contiguous(), expected


def _torchscript(wrapper: nn.Module, example: torch.Tensor, x: torch.Tensor,
                 ) -> tuple[bytes, np.ndarray | None, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing / TorchScript deprecation notices
        traced = torch.jit.trace(wrapper, example)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
        data = buf.getvalue()
        reloaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
        with torch.no_grad():
            got = reloaded(x).numpy()
    return data, got, "reloaded with torch.jit.load"


def _onnx(wrapper: nn.Module, example: torch.Tensor, x: torch.Tensor,
          ) -> tuple[bytes, np.ndarray | None, str]:
    if find_spec("onnx") is None:
        raise FeraugError("ONNX export needs the onnx package (and onnxruntime to check it): "
                          "pip install onnx onnxruntime, or use --format torchscript")
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated
            torch.onnx.export(wrapper, (example,), buf, dynamo=False, opset_version=ONNX_OPSET,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}})
    except Exception as exc:  # noqa: BLE001 - exporter failures are environment problems
        raise FeraugError(f"ONNX export failed ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); "
                          "try --format torchscript") from None
    data = buf.getvalue()
    import onnx

    onnx.checker.check_model(onnx.load_from_string(data))
    notes = ["onnx.checker passed"]
    if find_spec("onnxruntime") is None:
        notes.append("onnxruntime is NOT installed, so the exported probabilities were NOT "
                     "compared with the original (pip install onnxruntime)")
        return data, None, "; ".join(notes)
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    notes.append("run with onnxruntime")
    return data, got, "; ".join(notes)


def default_output(checkpoint: Path, fmt: str) -> Path:
    """``best.pt`` -> ``best.onnx`` / ``best.torchscript.pt`` next to the checkpoint."""
    return checkpoint.with_name(checkpoint.stem + SUFFIXES[fmt])


def export_model(checkpoint: str | Path, out: str | Path | None = None, format: str = "onnx",
                 batch: int = 8, atol: float = 1e-5) -> ExportResult:
    """Export ``checkpoint`` to ``out`` (default: next to it) as ONNX or TorchScript.

    The export runs on a fixed random batch of ``batch`` images and its probabilities are
    compared with the original model's (max absolute difference at most ``atol``); a
    mismatch raises :class:`FeraugError` and nothing is written. When the check cannot run
    (ONNX without onnxruntime) the file is written and ``checked`` is False, said in
    ``message``. Existing files are never overwritten.
    """
    if format not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)} (got {format!r})")
    checkpoint = Path(checkpoint)
    out = Path(out) if out is not None else default_output(checkpoint, format)
    sidecar = out.with_name(out.name + ".json")
    for path in (out, sidecar):
        if path.exists():
            raise FeraugError(f"{path}: already exists; refusing to overwrite (choose --out)")
    loaded = load_classifier(checkpoint, "cpu")
    wrapper = ProbabilityModel(loaded.model).eval()
    x, expected = _check_batch(loaded, batch)
    export = _onnx if format == "onnx" else _torchscript
    data, got, how = export(wrapper, x[:2].clone(), x)
    diff = None
    if got is not None:
        diff = float(np.abs(got - expected).max())
        if got.shape != expected.shape or not diff <= atol:
            raise FeraugError(f"{checkpoint}: exported {format} model disagrees with the "
                              f"original (max |diff| {diff:.2e} > {atol:g}); nothing written")
    atomic_write_bytes(data, out)
    write_json(preprocessing(loaded, format, checkpoint.name), sidecar)
    if got is None:
        message = f"{format} export written but NOT verified: {how}"
    else:
        message = (f"{format} export verified on {batch} images ({how}): max |diff| in "
                   f"probabilities {diff:.1e} <= {atol:g}")
    return ExportResult(out, sidecar, format, got is not None, diff, message)
