"""The notification benchmark runs end to end in its quick mode (figures are not asserted)."""

from __future__ import annotations

import re

from tests.support.bench import run_bench


def test_notify_bench_quick() -> None:
    out = run_bench("notify_bench.py", "--quick")
    figures = r":\s+p50\s+[\d.]+ ms\s+p99\s+[\d.]+ ms\s+max\s+[\d.]+ ms\s+\(100 deliveries\)"
    assert re.search(r"yilian /notify \(commit -> client\)\s*" + figures, out), out
    assert re.search(r"bare python-socketio emit\s*" + figures, out), out
    assert re.search(r"speed yilian/bare \(bare p99 / yilian p99\) = [\d.]+", out), out
