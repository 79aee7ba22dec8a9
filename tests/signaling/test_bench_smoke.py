"""The signalling benchmark runs end to end in its smoke mode (figures are not asserted)."""

from __future__ import annotations

import re

from tests.support.bench import run_bench


def test_signalling_bench_smoke() -> None:
    out = run_bench("signalling_bench.py", "--smoke")
    assert re.search(
        r"yilian /rtc \(socket\.io\) :\s+\d+ msg/s\s+p50\s+[\d.]+ ms\s+p99\s+[\d.]+ ms", out
    ), out
    assert re.search(r"bare aiohttp WebSocket\s+:\s+\d+ msg/s", out), out
    assert re.search(r"throughput yilian/bare = [\d.]+", out), out
    assert re.search(r"through yilian\s+:\s+[\d.]+ ms", out), out
    assert re.search(r"direct, in-process\s+:\s+[\d.]+ ms", out), out
    assert re.search(r"setup yilian/direct = [\d.]+", out), out
