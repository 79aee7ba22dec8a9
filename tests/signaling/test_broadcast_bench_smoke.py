"""The broadcast benchmark runs end to end in its quick mode (figures are not asserted)."""

from __future__ import annotations

import re

from tests.support.bench import run_bench

ROW = r"\s+(\d+\.\d\d)\s+(\d+\.\d)\s+(\d+\.\d)\s+(\d+\.\d\d s|none)\s+\d+ MiB\s+(\d+)/(\d+)"


def test_broadcast_bench_quick() -> None:
    out = run_bench("broadcast_bench.py", "--quick")
    for viewers in (1, 3):
        for relay in ("stock", "ours"):
            row = re.search(rf"^\s+{viewers} \| {relay:<6}{ROW}$", out, re.MULTILINE)
            assert row, out
            assert row.group(5) == row.group(6) == str(viewers), out  # every viewer joined
            if relay == "ours" or viewers == 1:
                assert float(row.group(3)) > 0, out  # its viewers received frames
    assert len(re.findall(r"ratio\s+cpu stock/ours [\d.]+x", out)) == 2, out
    assert re.search(r"max viewers at <= [\d.]+ cores \(>= 25 fps median\): stock \d+, ours \d+",
                     out), out
