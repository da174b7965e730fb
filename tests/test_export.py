"""feraug.export and `feraug export`: TorchScript and ONNX round trips against the original."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch
from conftest import CKPT_CROP as CROP
from conftest import CKPT_SIZE as SIZE
from typer.testing import CliRunner

import feraug.export as export_mod
from feraug.classifier.infer import predict_proba, to_model_input
from feraug.cli.main import app
from feraug.emotions import FER2013_CLASSES
from feraug.errors import ConfigError, FeraugError
from feraug.export import export_model
from feraug.models.checkpoint import load_classifier


def faces(n: int = 5) -> torch.Tensor:
    """uint8 batch ``[n,1,48,48]`` (different from the exporter's own check batch)."""
    return torch.randint(0, 256, (n, 1, SIZE, SIZE), generator=torch.Generator().manual_seed(7),
                         dtype=torch.uint8)


def check_sidecar(path: Path, fmt: str) -> None:
    meta = json.loads(path.read_text())
    assert meta["format"] == fmt and meta["classes"] == list(FER2013_CLASSES)
    assert (meta["image_size"], meta["crop_size"]) == (SIZE, CROP)
    assert (meta["mean"], meta["std"]) == (0.5, 0.5)
    assert meta["input"]["shape"] == ["N", 1, CROP, CROP]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.load deprecation notice
def test_torchscript_round_trip(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.ts"
    res = export_model(ckpt, out, "torchscript")
    assert res.checked and res.max_abs_diff is not None and res.max_abs_diff < 1e-5
    assert res.path == out and res.sidecar == tmp_path / "model.ts.json"
    check_sidecar(res.sidecar, "torchscript")
    scripted = torch.jit.load(str(out))
    loaded = load_classifier(ckpt)
    u8 = faces()
    with torch.no_grad():
        got = scripted(to_model_input(u8, CROP))
    want = predict_proba(loaded.model, u8, CROP, "none")
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(got.sum(1), torch.ones(5), atol=1e-5)
    with pytest.raises(FeraugError, match="refusing to overwrite"):
        export_model(ckpt, out, "torchscript")


def test_onnx_round_trip_or_clear_report(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    if find_spec("onnx") is None:
        with pytest.raises(FeraugError, match="pip install onnx"):
            export_model(ckpt, out, "onnx")
        assert not out.exists()
        return
    res = export_model(ckpt, out, "onnx")
    check_sidecar(res.sidecar, "onnx")
    if find_spec("onnxruntime") is None:
        assert not res.checked and "NOT" in res.message
        return
    assert res.checked and res.max_abs_diff < 1e-5
    import onnxruntime as ort

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    u8 = faces()
    got = session.run(None, {"input": to_model_input(u8, CROP).numpy()})[0]
    want = predict_proba(load_classifier(ckpt).model, u8, CROP, "none").numpy()
    assert abs(got - want).max() < 1e-5


def test_onnx_without_onnxruntime_is_written_but_reported_unchecked(
        ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = export_mod.find_spec
    monkeypatch.setattr(export_mod, "find_spec",
                        lambda name: None if name == "onnxruntime" else real(name))
    out = tmp_path / "m.onnx"
    if find_spec("onnx") is None:
        with pytest.raises(FeraugError, match="pip install onnx"):
            export_model(ckpt, out, "onnx")
        return
    res = export_model(ckpt, out, "onnx")
    assert out.is_file() and not res.checked and res.max_abs_diff is None
    assert "NOT" in res.message and "onnxruntime" in res.message


def test_mismatch_writes_nothing(ckpt: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = export_mod._check_batch

    def shifted(loaded, n):
        x, expected = real(loaded, n)
        return x, expected + 0.01

    monkeypatch.setattr(export_mod, "_check_batch", shifted)
    out = tmp_path / "bad.ts"
    with pytest.raises(FeraugError, match="disagrees"):
        export_model(ckpt, out, "torchscript")
    assert not out.exists() and not (tmp_path / "bad.ts.json").exists()


def test_bad_format(ckpt: Path) -> None:
    with pytest.raises(ConfigError, match="format"):
        export_model(ckpt, None, "tflite")


def test_cli_export_default_output_path(ckpt: Path, tmp_path: Path) -> None:
    src = tmp_path / "best.pt"
    src.write_bytes(ckpt.read_bytes())
    r = CliRunner().invoke(app, ["export", str(src), "--format", "torchscript"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "best.torchscript.pt").is_file()
    assert (tmp_path / "best.torchscript.pt.json").is_file()
    assert "verified" in r.stdout
