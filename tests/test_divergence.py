"""A run whose loss or weights stop being finite ends with one error line and leaves no result;
non-finite settings are refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_diverged_classifier_is_an_error_not_a_result(fer_slice: Path, tmp_path: Path,
                                                      run_cli, one_thread) -> None:
    cfg = write(tmp_path / "c.yaml", "optimizer: sgd\nlr: 1.0e+30\nepochs: 2\nbatch_size: 8\n")
    out = tmp_path / "run"
    res = run_cli("train", "-c", cfg, "--data", fer_slice, "--model", "zhu-cnn",
                  "--out", out, "--device", "cpu")
    assert res.code != 0
    assert "diverged" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (out / "best.pt").exists()


def test_diverged_generator_is_an_error_not_a_checkpoint(fer_slice: Path, tmp_path: Path,
                                                         run_cli, one_thread) -> None:
    cfg = write(tmp_path / "g.yaml", "lr: 1.0e+30\nbatch_size: 4\nngf: 4\nn_blocks: 1\n"
                "ndf: 4\npool_size: 2\n")
    out = tmp_path / "gan"
    res = run_cli("gan", "train", "-m", "cyclegan", "-d", fer_slice, "-c", cfg, "--steps", 6,
                  "--log-every", 1, "--out", out, "--device", "cpu")
    assert res.code != 0
    assert "diverged" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize("text", ["lr: .inf\n", "lr: .nan\n", "plateau_factor: 5\n"])
def test_non_finite_or_impossible_settings_are_refused(text: str, fer_slice: Path,
                                                       tmp_path: Path, run_cli) -> None:
    cfg = write(tmp_path / "c.yaml", text)
    res = run_cli("train", "-c", cfg, "--data", fer_slice, "--out", tmp_path / "run",
                  "--device", "cpu")
    assert res.code != 0 and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_non_finite_generator_setting_is_refused(fer_slice: Path, tmp_path: Path,
                                                 run_cli) -> None:
    cfg = write(tmp_path / "g.yaml", "lr: .inf\n")
    res = run_cli("gan", "train", "-m", "cgan", "-d", fer_slice, "-c", cfg,
                  "--out", tmp_path / "gan", "--device", "cpu")
    assert res.code != 0 and len(res.stderr.strip().splitlines()) == 1


def test_non_utf8_config_and_overflowing_csv_pixel_are_one_line(fer_csv: Path, tmp_path: Path,
                                                                run_cli) -> None:
    cfg = tmp_path / "latin1.yaml"
    cfg.write_bytes("model: zhu-cnn  # caf\xe9\n".encode("latin-1"))
    res = run_cli("train", "-c", cfg, "--data", fer_csv, "--out", tmp_path / "run")
    assert res.code != 0 and "UTF-8" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    lines = fer_csv.read_text().splitlines()
    label, pixels, usage = lines[1].split(",")
    lines[1] = ",".join([label, "99999999999999999999999 " + pixels.split(" ", 1)[1], usage])
    fer_csv.write_text("\n".join(lines) + "\n")
    res = run_cli("data", "info", fer_csv, "--no-cache")
    assert res.code != 0 and "row 2" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [("train", "-c"), ("experiment", "run")])
def test_broken_yaml_is_one_line_naming_file_line_and_column(tmp_path: Path, run_cli,
                                                             command: tuple[str, ...]) -> None:
    cfg = write(tmp_path / "broken.yaml", "epochs: 2\n  batch_size: 8\n")
    res = run_cli(*command, cfg)
    assert res.code != 0
    assert len(res.stderr.strip().splitlines()) == 1
    assert "broken.yaml" in res.stderr and "line 2, column" in res.stderr
