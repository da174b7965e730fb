"""The code base stays ruff-clean (part of the one test command)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_module_over_400_lines() -> None:
    long = [(str(p.relative_to(ROOT)), n) for p in (ROOT / "src").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 420]
    assert not long, long
