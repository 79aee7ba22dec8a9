"""A write transaction cancelled at any point, even twice (a shutdown cancelling a request that is
already unwinding), leaves no SQLite lock behind: the next writer of the file, in this process
or another, gets the lock at once.

aiosqlite 0.22 leaks the sqlite3 connection, and with it SQLite's write lock, when its
``stop()`` runs before its ``close()`` has run on its thread: the order SQLAlchemy's
"terminate" takes when the cancelled transaction's graceful close is itself cancelled.
``Database`` terminates aiosqlite connections by closing them (core/db.py)."""

from __future__ import annotations

import asyncio
import random
import sqlite3

import pytest
from sqlalchemy import insert

from yilian.server.core.db import Database
from yilian.server.core.models import AuditEntry
from yilian.server.core.settings import Settings


def _lock_is_free(path: str) -> bool:
    probe = sqlite3.connect(path, timeout=0.5, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


async def test_writes_cancelled_twice_at_random_points_leave_no_lock(settings: Settings) -> None:
    db = Database(settings.resolved_database_url)
    if not db.is_sqlite or db.engine.url.database in (None, "", ":memory:"):
        await db.close()
        pytest.skip("SQLite files only")
    path = str(db.engine.url.database)
    rnd = random.Random(7)

    async def work(i: int) -> None:
        async with db.write() as session:
            for j in range(3):
                await session.execute(insert(AuditEntry).values(
                    action="cancel-probe", resource_type="test", resource_id=f"{i}.{j}"))

    try:
        held = []
        for i in range(40):
            task = asyncio.ensure_future(work(i))
            await asyncio.sleep(rnd.random() * 0.004)
            task.cancel()
            for _ in range(rnd.randrange(1, 8)):  # cancelled again while it unwinds
                await asyncio.sleep(0)
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.sleep(0.05)  # the worker thread's close, if any, has run by now
            if not await asyncio.to_thread(_lock_is_free, path):
                held.append(i)
                await asyncio.sleep(1)  # let the collector or a late close free it
        assert held == [], f"SQLite's write lock was left held after cancellations {held}"
        # And the database still takes writes through every path.
        await work(999)
    finally:
        await db.close()
