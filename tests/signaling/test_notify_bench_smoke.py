"""The notification benchmark runs end to end in its quick mode (figures are not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_notify_bench_quick() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "notify_bench.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    figures = r":\s+p50\s+[\d.]+ ms\s+p99\s+[\d.]+ ms\s+max\s+[\d.]+ ms\s+\(100 deliveries\)"
    assert re.search(r"yilian /notify \(commit -> client\)\s*" + figures, out), out
    assert re.search(r"bare python-socketio emit\s*" + figures, out), out
    assert re.search(r"speed yilian/bare \(bare p99 / yilian p99\) = [\d.]+", out), out
