"""Database.write_sync: one synchronous transaction (on SQLite on the event loop's thread, or one
worker-thread call with blocking work or while another process holds the lock; run_sync
elsewhere), committed on return, rolled back on error, and writers kept one at a time even
when the caller is cancelled."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yilian.server.core.db import Database
from yilian.server.core.models import AuditEntry
from yilian.server.core.settings import Settings


def _audit(session: Session, action: str) -> int:
    session.add(AuditEntry(user_id=None, institution_id=None, action=action,
                           resource_type="test", resource_id=None, ip=None, detail=None))
    session.flush()
    return int(session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == action)) or 0)


async def _count(db: Database, action: str) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEntry)
                                        .where(AuditEntry.action == action)) or 0)


async def test_commits_rolls_back_and_queues_writers(settings: Settings) -> None:
    db = Database(settings.resolved_database_url)
    try:
        assert await db.write_sync(lambda s: _audit(s, "ws-commit")) == 1
        assert await _count(db, "ws-commit") == 1

        def fails(session: Session) -> None:
            _audit(session, "ws-rollback")
            raise ValueError("no")

        with pytest.raises(ValueError):
            await db.write_sync(fails)
        assert await _count(db, "ws-rollback") == 0

        if not db.is_sqlite:
            return  # elsewhere the function runs on the event loop (run_sync): no thread
        # Cancelled while its transaction runs (in a worker thread: it has blocking work before
        # its commit): the next writer still waits for it to end.
        started, release = threading.Event(), threading.Event()

        def slow(session: Session) -> None:
            _audit(session, "ws-slow")
            started.set()
            release.wait(10)

        task = asyncio.ensure_future(db.write_sync(slow, before_commit=lambda: None))
        await asyncio.to_thread(started.wait, 10)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # still holding the write lock for the running transaction
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db.write() as session:
            session.add(AuditEntry(user_id=None, institution_id=None, action="ws-after",
                                   resource_type="test", resource_id=None, ip=None,
                                   detail=None))
        assert await _count(db, "ws-slow") == 1 and await _count(db, "ws-after") == 1
    finally:
        await db.close()


async def test_a_lock_held_by_another_process_is_waited_for_off_the_loop(
        settings: Settings) -> None:
    """SQLite's write lock held elsewhere (another process, here a plain connection): the
    transaction is not run on the event loop, which stays free, and commits once the lock is
    released."""
    db = Database(settings.resolved_database_url)
    try:
        if db._sync_url is None:
            pytest.skip("SQLite files only")
        await db.write_sync(lambda s: _audit(s, "ws-warm"))
        other = sqlite3.connect(db.engine.url.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        task = asyncio.ensure_future(db.write_sync(lambda s: _audit(s, "ws-waited")))
        ticks = 0
        for _ in range(10):  # the loop keeps running while the writer waits
            await asyncio.sleep(0.02)
            ticks += 1
        assert ticks == 10 and not task.done()
        other.execute("ROLLBACK")
        other.close()
        assert await asyncio.wait_for(task, 30) == 1
        assert await db.read_sync(lambda s: _audit_count(s, "ws-waited")) == 1
    finally:
        await db.close()


def _audit_count(session: Session, action: str) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == action)) or 0)
