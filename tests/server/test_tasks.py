"""Periodic jobs stop without leaving SQLite locked: a shutdown's cancel that lands while a
job waits for the write lock must not leave its connection holding the lock afterwards (the
audit log's last flush, and every other writer on the file, would wait out the busy timeout
and fail — seen as "database is locked" at a test server's close)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from yilian.server.core.db import Database
from yilian.server.core.tasks import every

pytestmark = pytest.mark.asyncio


async def test_a_cancelled_periodic_job_leaves_the_database_writable(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}"
    holder, looper, other = Database(url), Database(url), Database(url)
    try:
        async with holder.write() as session:
            await session.execute(text("CREATE TABLE t (x INTEGER)"))
        done: list[int] = []

        async def job() -> None:
            async with looper.write() as session:  # waits for the holder's lock in its thread
                await session.execute(text("INSERT INTO t VALUES (1)"))
            done.append(1)

        release = asyncio.Event()

        async def hold() -> None:
            async with holder.write() as session:
                await session.execute(text("INSERT INTO t VALUES (0)"))
                await release.wait()

        holding = asyncio.create_task(hold())
        await asyncio.sleep(0.2)
        loop = asyncio.create_task(every(3600, job, "test"))
        await asyncio.sleep(0.3)  # the job's BEGIN IMMEDIATE is waiting in aiosqlite's thread
        loop.cancel()  # the app shuts down
        await asyncio.sleep(0.1)
        release.set()
        await holding
        await asyncio.gather(loop, return_exceptions=True)
        assert done == [1]  # the run under way finished (and committed) before the loop ended
        started = time.monotonic()
        async with other.write() as session:  # nobody holds the lock any more
            await session.execute(text("INSERT INTO t VALUES (2)"))
        assert time.monotonic() - started < 5
    finally:
        for db in (holder, looper, other):
            await db.close()
