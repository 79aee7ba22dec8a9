"""The statistics benchmark runs end to end at tiny sizes (figures are never asserted)."""

from __future__ import annotations

import os
import re

from tests.support.bench import run_bench


def test_stats_bench_quick() -> None:
    pg = os.environ.get("YILIAN_TEST_DATABASE_URL")
    out = run_bench("stats_bench.py", "--quick", *(["--pg", pg] if pg else ["--no-pg"]))
    for db in ("SQLite", "PostgreSQL") if pg else ("SQLite",):
        assert re.search(rf"\[{db}\] a year of one alliance: [\d,]+ consultations", out), out
        for line in ("dashboard \\(every figure\\)", "baseline COUNT", "baseline dashboard"):
            assert re.search(rf"\[{db}\] {line}.*p50\s+[\d.]+ ms\s+p95\s+[\d.]+ ms", out), out
