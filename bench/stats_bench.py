"""Statistics benchmark: the dashboard's query (every figure of GET /api/stats) for a year of
one alliance, over 1,000,000 consultations and 200,000 referrals, on SQLite and PostgreSQL.

The data: 10 alliances of 30 institutions (province to village), two years, consultations of
every kind and outcome, referrals up and down (5 % green channel, with door, CT and needle or
balloon time points), 2,000 teaching sessions with 40,000 stays, and monthly visit totals. A
year of one alliance is then about 50,000 consultations and 10,000 referrals. Rows go in bulk:
``executemany`` on one sqlite3 connection, ``COPY`` on PostgreSQL.

Printed beside the dashboard, measured in the same run on the same rows:
- ``COUNT(*)`` of that alliance-year's consultations (the floor: reading them at all);
- the dashboard with the statistics indexes (migration 0009_stats) dropped.

    python bench/stats_bench.py                      # full size; PostgreSQL too when reachable
    python bench/stats_bench.py --quick              # 20,000 / 4,000 (the smoke test)
    python bench/stats_bench.py --pg postgresql+asyncpg://postgres@127.0.0.1:5432/test
    python bench/stats_bench.py --no-pg
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from yilian.server.clinic.models import Consultation  # noqa: E402
from yilian.server.clinic.stats.models import STATS_INDEXES  # noqa: E402
from yilian.server.clinic.stats.period import Period, month_start  # noqa: E402
from yilian.server.clinic.stats.scope import resolve  # noqa: E402
from yilian.server.clinic.stats.service import compute  # noqa: E402
from yilian.server.core.db import Database  # noqa: E402
from yilian.server.core.models import Alliance, AllianceMember, Institution, User  # noqa: E402
from yilian.server.schema import migrate  # noqa: E402

ALLIANCES, MEMBERS = 10, 30
LEVELS = ["province", "city", "county"] + ["township"] * 9 + ["village"] * 18
KINDS = ["video"] * 50 + ["outpatient"] * 30 + ["imaging"] * 15 + ["pathology"] * 5
STATES = ["completed"] * 80 + ["declined", "cancelled", "no_show", "expired"] * 4 + \
    ["requested", "accepted", "in_progress", "requested"]
REF_STATES = ["completed"] * 85 + ["rejected"] * 5 + ["cancelled"] * 5 + ["expired"] * 5
START = month_start(2024, 1)
END = month_start(2026, 1)  # two years; the measured year is 2025


def sqlite_time(at: datetime) -> str:
    """How SQLAlchemy stores a UTC time on SQLite."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def rows(n_consultations: int, n_referrals: int, people: dict[int, tuple[int, int]],
         alliances: list[list[int]], rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    """The big tables' rows, as tuples in the column order of ``COLUMNS``."""
    span = (END - START).total_seconds()
    out: dict[str, list[tuple[Any, ...]]] = {k: [] for k in COLUMNS}
    for cid in range(1, n_consultations + 1):
        members = alliances[cid % ALLIANCES]
        src = members[rng.randrange(3, MEMBERS)]
        dst = members[rng.randrange(0, 3)]
        at = START + timedelta(seconds=rng.random() * span)
        user, patient = people[src]
        out["consultations"].append((cid, patient, user, src, rng.choice(KINDS), "routine", "q",
                                     rng.choice(STATES), people[dst][0], None, at,
                                     at + timedelta(days=3), at))
    for rid in range(1, n_referrals + 1):
        members = alliances[rid % ALLIANCES]
        low, high = members[rng.randrange(3, MEMBERS)], members[rng.randrange(0, 3)]
        up = rng.random() < 0.35
        src, dst = (low, high) if up else (high, low)
        at = START + timedelta(seconds=rng.random() * span)
        green = rng.choice(["stroke", "chest_pain"]) if up and rng.random() < 0.14 else None
        status = "completed" if green else rng.choice(REF_STATES)
        accepted = at + timedelta(minutes=rng.uniform(1, 30))
        arrived = accepted + timedelta(minutes=rng.uniform(20, 300))
        done = status == "completed"
        out["referrals"].append((rid, people[src][1], "up" if up else "down", status, src, dst,
                                 people[src][0], "r", green, at + timedelta(hours=1), at,
                                 accepted if done else None, arrived if done else None, at))
        if green and done:
            out["referral_milestones"].append((rid, "door", arrived, arrived, "transition"))
            last = "needle" if green == "stroke" else "balloon"
            at2 = arrived + timedelta(minutes=rng.uniform(30, 100))
            out["referral_milestones"].append((rid, last, at2, at2, "manual"))
    sessions = max(20, n_consultations // 500)
    for sid in range(1, sessions + 1):
        members = alliances[sid % ALLIANCES]
        at = START + timedelta(seconds=rng.random() * span)
        out["teaching_sessions"].append((sid, "t", "lecture", at, at + timedelta(hours=1),
                                         people[members[0]][0], people[members[0]][0],
                                         members[0], "ended", False, at, at + timedelta(hours=1),
                                         at))
        for _ in range(20):
            inst = members[rng.randrange(MEMBERS)]
            out["teaching_attendance"].append((sid, people[inst][0], inst,
                                               at + timedelta(minutes=rng.uniform(0, 20)),
                                               at + timedelta(minutes=rng.uniform(30, 60))))
    for members in alliances:
        for inst in members:
            for year in (2024, 2025):
                for month in range(1, 13):
                    out["outpatient_visit_totals"].append((inst, f"{year}-{month:02d}",
                                                           rng.randrange(500, 20000), END))
    return out


COLUMNS = {
    "consultations": ("id", "patient_id", "requester_id", "requester_institution_id", "kind",
                      "urgency", "question", "status", "expert_id", "target_institution_id",
                      "created_at", "deadline", "updated_at"),
    "referrals": ("id", "patient_id", "direction", "status", "from_institution_id",
                  "to_institution_id", "requester_id", "reason", "green_channel", "deadline",
                  "requested_at", "accepted_at", "arrived_at", "updated_at"),
    "referral_milestones": ("referral_id", "milestone", "at", "recorded_at", "source"),
    "teaching_sessions": ("id", "title", "kind", "start", "end", "presenter_id", "organiser_id",
                          "institution_id", "status", "record", "started_at", "ended_at",
                          "created_at"),
    "teaching_attendance": ("session_id", "user_id", "institution_id", "joined_at", "left_at"),
    "outpatient_visit_totals": ("institution_id", "month", "visits", "updated_at"),
}


async def directory(db: Database) -> tuple[dict[int, tuple[int, int]], list[list[int]]]:
    """Institutions, one doctor and one patient each, and the alliances."""
    from yilian.server.clinic.models import Patient

    alliances: list[list[int]] = []
    people: dict[int, tuple[int, int]] = {}
    async with db.write() as session:
        for a in range(ALLIANCES):
            ids = []
            for m in range(MEMBERS):
                inst = Institution(name=f"A{a} member {m}", level=LEVELS[m],
                                   parent_id=ids[0] if 0 < m < 3 else None)
                session.add(inst)
                await session.flush()
                ids.append(inst.id)
            alliances.append(ids)
            session.add(Alliance(name=f"Alliance {a}", kind="tight", lead_institution_id=ids[0],
                                 members=[AllianceMember(institution_id=i) for i in ids]))
        await session.flush()
        users = [{"username": f"u{i}", "display_name": "u", "password_hash": "x",
                  "role": "specialist", "institution_id": i, "specialties": []}
                 for ids in alliances for i in ids]
        await session.execute(insert(User), users)
        for uid, iid in await session.execute(select(User.id, User.institution_id)):
            people[iid] = (uid, 0)
        await session.execute(insert(Patient), [
            {"institution_id": i, "name": "p", "sex": "female", "created_by_id": people[i][0]}
            for i in people])
        for pid, iid in await session.execute(select(Patient.id, Patient.institution_id)):
            people[iid] = (people[iid][0], pid)
    return people, alliances


def load_sqlite(path: Path, data: dict[str, list[tuple[Any, ...]]]) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    with conn:
        for table, cols in COLUMNS.items():
            rows_ = [tuple(sqlite_time(v) if isinstance(v, datetime) else v for v in r)
                     for r in data[table]]
            quoted = ", ".join(f'"{c}"' for c in cols)
            conn.executemany(f'INSERT INTO {table} ({quoted}) VALUES '
                             f'({", ".join("?" * len(cols))})', rows_)
    conn.execute("ANALYZE")
    conn.close()


async def load_pg(url: str, data: dict[str, list[tuple[Any, ...]]]) -> None:
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(user=u.username or "postgres", host=u.host or "127.0.0.1",
                                 port=u.port or 5432, database=u.database, password=u.password)
    try:
        for table, cols in COLUMNS.items():
            await conn.copy_records_to_table(table, records=data[table], columns=list(cols))
        await conn.execute("VACUUM ANALYZE")  # as autovacuum leaves a settled table
    finally:
        await conn.close()


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds (one warm-up call first)."""
    await fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]


async def measure(label: str, url: str, n_c: int, n_r: int, repeat: int,
                  pg_admin: Callable[[str], Awaitable[None]] | None = None,
                  sqlite_path: Path | None = None) -> None:
    db = Database(url)
    await migrate(db)
    people, alliances = await directory(db)
    data = rows(n_c, n_r, people, alliances, random.Random(11))
    began = time.perf_counter()
    if sqlite_path is not None:
        await db.close()
        await asyncio.to_thread(load_sqlite, sqlite_path, data)
        db = Database(url)
    else:
        await load_pg(url, data)
    print(f"[{label}] loaded {n_c:,} consultations, {n_r:,} referrals, "
          f"{len(data['referral_milestones']):,} time points, "
          f"{len(data['teaching_attendance']):,} teaching stays in "
          f"{time.perf_counter() - began:.1f} s", flush=True)
    period = Period(month_start(2025, 1), month_start(2026, 1))
    now = datetime(2026, 1, 15, tzinfo=UTC)
    admin = User(id=0, role="admin", institution_id=alliances[0][0])
    turn = [0]

    async def dashboard() -> None:
        turn[0] += 1
        async with db.read() as session:
            scope = await resolve(session, admin, None, None, False)
            ids = set(alliances[turn[0] % ALLIANCES])
            scope.places[:] = [p for p in scope.places if p.id in ids]
        await compute(db, scope, period, now)

    async def count() -> None:
        turn[0] += 1
        c = Consultation
        async with db.read() as session:
            await session.execute(select(func.count()).where(
                c.requester_institution_id.in_(alliances[turn[0] % ALLIANCES]),
                c.created_at >= period.start, c.created_at < period.end))

    async with db.read() as session:
        one = await resolve(session, admin, None, None, False)
        ids = set(alliances[1])
        one.places[:] = [p for p in one.places if p.id in ids]
    figures = await compute(db, one, period, now)
    print(f"[{label}] a year of one alliance: {figures['consultations']['total']:,} "
          f"consultations, {figures['referrals']['total']:,} referrals, "
          f"{figures['referrals']['green_channel']['count']:,} green channel", flush=True)
    p50, p95 = await timed(dashboard, repeat)
    b50, b95 = await timed(count, repeat)
    async with db.write() as session:
        for index in STATS_INDEXES:
            await session.execute(text(f"DROP INDEX {index.name}"))
    n50, n95 = await timed(dashboard, max(3, repeat // 4))
    print(f"[{label}] dashboard (every figure), a year of one alliance: "
          f"p50 {p50:8.1f} ms  p95 {p95:8.1f} ms   target p95 < 500 ms", flush=True)
    print(f"[{label}] baseline COUNT(*) of those consultations:        "
          f"p50 {b50:8.1f} ms  p95 {b95:8.1f} ms", flush=True)
    print(f"[{label}] baseline dashboard without the 0009 indexes:      "
          f"p50 {n50:8.1f} ms  p95 {n95:8.1f} ms", flush=True)
    await db.close()


async def pg_reachable(url: str) -> bool:
    import asyncpg

    u = make_url(url)
    try:
        conn = await asyncio.wait_for(asyncpg.connect(
            user=u.username or "postgres", host=u.host or "127.0.0.1", port=u.port or 5432,
            database=u.database or "postgres", password=u.password), 3)
    except Exception:  # noqa: BLE001 - whatever the failure, PostgreSQL is skipped
        return False
    await conn.close()
    return True


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 consultations, 4,000 "
                        "referrals, 5 runs (the smoke test)")
    parser.add_argument("--consultations", type=int, default=1_000_000)
    parser.add_argument("--referrals", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--pg", default=os.environ.get(
        "YILIAN_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args(argv)
    n_c, n_r, repeat = ((20_000, 4_000, 5) if args.quick
                        else (args.consultations, args.referrals, args.repeat))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        await measure("SQLite", f"sqlite+aiosqlite:///{path}", n_c, n_r, repeat,
                      sqlite_path=path)
    if args.no_pg or not await pg_reachable(args.pg):
        print("[PostgreSQL] skipped (no server reachable; --pg URL)")
        return 0
    import asyncpg

    u = make_url(args.pg)
    name = f"yilian_stats_bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(user=u.username or "postgres", host=u.host or "127.0.0.1",
                                     port=u.port or 5432, database=u.database or "postgres",
                                     password=u.password)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await admin(f'CREATE DATABASE "{name}"')
    try:
        await measure("PostgreSQL", u.set(database=name).render_as_string(hide_password=False),
                      n_c, n_r, repeat)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
