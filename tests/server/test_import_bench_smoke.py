"""The import benchmark runs end to end in its quick mode (figures are not asserted)."""

from __future__ import annotations

import re

from tests.support.bench import run_bench


def test_import_bench_quick() -> None:
    out = run_bench("import_bench.py", "--quick")
    assert re.search(r"^import of 50 users, 10 institutions, 10 departments", out, re.M), out
    for label in ("dry run", "real run", "baseline: login-strength argon2id"):
        assert re.search(rf"^\s+{re.escape(label)}.*\s[\d.]+ s", out, re.M), out
    assert re.search(r"ratio baseline/import\s+[\d.]+x", out), out
