"""No command writes its output inside the data it reads: files there would be read back as
training, test or input images the next time (one clear line, nothing written)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.parametrize("make_args", [
    lambda data, ckpt: ["train", "--data", data, "--model", "zhu-cnn", "--max-steps", "1",
                        "--out", data / "Training" / "run"],
    lambda data, ckpt: ["evaluate", ckpt, data, "--out", data / "PrivateTest" / "eval"],
    lambda data, ckpt: ["predict", data / "PublicTest", "--no-detect", "-m", ckpt,
                        "--out", data / "PublicTest" / "annotated"],
    lambda data, ckpt: ["gan", "train", "-m", "fastgan", "-d", data, "--steps", "1",
                        "-o", data / "gan"],
], ids=["train", "evaluate", "predict", "gan-train"])
def test_out_inside_the_data_is_refused(make_args, fer_slice: Path, ckpt: Path,
                                        run_cli) -> None:
    before = sorted(p for p in fer_slice.rglob("*"))
    res = run_cli(*make_args(fer_slice, ckpt))
    assert res.code == 2
    assert "refusing to write inside" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert sorted(p for p in fer_slice.rglob("*")) == before
