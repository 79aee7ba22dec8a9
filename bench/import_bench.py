"""Importing an alliance that moves in: 5,000 users and 500 institutions (with a department
each) from CSV through ``POST /api/imports``, against the cost of the same accounts made one by
one with the login's password hashing, measured in the same run.

The server is a fresh ``yilian demo`` process on loopback (its ``admin`` account uploads).
The baseline hashes a sample of passwords with the login's argon2id parameters (what creating
each account with a chosen password costs) and extrapolates to every user; the import hashes
one-time codes cheaply on a thread per core (server/clinic/admin/imports/codes.py says why
that is safe) and inserts each table in bulk.

    python bench/import_bench.py                     # 5,000 users, 500 institutions, SQLite
    python bench/import_bench.py --database-url postgresql+asyncpg://postgres@127.0.0.1/test
    python bench/import_bench.py --quick             # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_bench import drop_database, scratch_database, start, stop  # noqa: E402
from tests.server.import_files import alliance_rows, csv_bytes, form  # noqa: E402


def baseline_seconds(users: int, sample: int) -> float:
    """The login's argon2id hashing for ``users`` passwords, from a timed sample."""
    from yilian.server.core.auth import hash_password

    t0 = time.perf_counter()
    for i in range(sample):
        hash_password(f"chosen-password-{i}")
    return (time.perf_counter() - t0) / sample * users


async def post(http: aiohttp.ClientSession, url: str, token: str,
               files: dict[str, bytes]) -> tuple[int, dict, float]:
    t0 = time.perf_counter()
    async with http.post(url, data=form(**files),
                         headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.json()
        return resp.status, body, time.perf_counter() - t0


async def main(args: argparse.Namespace) -> int:
    rows = alliance_rows(args.institutions, args.users, prefix="bench")
    files = {name: csv_bytes(table) for name, table in rows.items()}
    size = sum(len(f) for f in files.values())
    data_dir = Path(tempfile.mkdtemp(prefix="yilian-import-bench-"))
    cmd = [sys.executable, "-m", "yilian.server.cli", "--log-level", "WARNING", "demo",
           "--port", "0", "--data-dir", str(data_dir), "--dicom-port", "off"]
    scratch = await scratch_database(args.database_url) if args.database_url else ""
    if scratch:
        cmd += ["--database-url", scratch]
    proc, base = start(cmd)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "/api/auth/login", json={
                    "username": "admin", "password": "yilian-demo"}) as resp:
                token = (await resp.json())["token"]
            status, report, dry_s = await post(http, base + "/api/imports/dry-run", token, files)
            assert status == 200 and report["ok"], report
            status, result, run_s = await post(http, base + "/api/imports", token, files)
            assert status == 201, result
            assert result["counts"]["users"] == args.users, result
    finally:
        stop(proc)
        if scratch:
            await drop_database(args.database_url, scratch)
    base_s = baseline_seconds(args.users, args.sample)
    print(f"import of {args.users} users, {args.institutions} institutions, "
          f"{len(rows['departments']) - 1} departments ({size / 1e6:.2f} MB of CSV), "
          f"{'PostgreSQL' if scratch else 'SQLite'}")
    print(f"  dry run (every row checked)           {dry_s:8.2f} s")
    print(f"  real run (all or nothing)             {run_s:8.2f} s")
    print(f"  baseline: login-strength argon2id     {base_s:8.2f} s  "
          f"(hashing alone, {args.sample} timed, extrapolated)")
    print(f"  ratio baseline/import                 {base_s / run_s:8.1f}x")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--institutions", type=int, default=500)
    parser.add_argument("--sample", type=int, default=10,
                        help="passwords hashed with the login's parameters for the baseline")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--quick", action="store_true", help="50 users, 10 institutions")
    ns = parser.parse_args()
    if ns.quick:
        ns.users, ns.institutions, ns.sample = 50, 10, 2
    raise SystemExit(asyncio.run(main(ns)))
