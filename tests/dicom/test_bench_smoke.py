"""The DICOMweb bench in its smoke mode: it runs end to end and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dicomweb_bench_quick() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "dicomweb_bench.py"),
                           "--quick"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| STOW-RS instances/s (4 concurrent)" in proc.stdout
    assert "| rendered JPEG p50 ms" in proc.stdout
