"""Running a benchmark script from the tests' smoke runs (figures are never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str, timeout: float = 300) -> str:
    """Run ``bench/<script>`` with ``args`` from the repository root; its standard output, once
    it has exited cleanly (the tail of both streams otherwise)."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout
