"""The one audit path: entries journaled at once, written in order, replayed after a crash."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select, text

from yilian.server.core.audit import AuditLog, AuditUnavailable
from yilian.server.core.db import Database
from yilian.server.core.models import AuditEntry
from yilian.server.schema import migrate


async def _actions(db: Database) -> list[str]:
    async with db.read() as session:
        return list((await session.execute(
            select(AuditEntry.action).where(AuditEntry.action.like("t-%"))
            .order_by(AuditEntry.id))).scalars())


async def test_entries_reach_the_table_in_order_and_the_journal_goes(settings) -> None:
    db = Database(settings.resolved_database_url)
    log = AuditLog(db, settings.data_dir / "audit", interval=30)
    await log.start()
    for n in range(5):
        log.record(None, f"t-{n}", "test", n)
    journals = list((settings.data_dir / "audit").glob("journal-*.jsonl"))
    assert len(journals) == 1 and len(journals[0].read_bytes().splitlines()) == 5
    assert await _actions(db) == []  # not yet: the writer runs every 30 s here
    await log.flush()
    assert await _actions(db) == [f"t-{n}" for n in range(5)]
    await log.close()
    assert list((settings.data_dir / "audit").glob("journal-*")) == []
    await db.close()


async def test_a_stop_whose_last_batch_the_database_refuses_keeps_its_journal(settings
                                                                            ) -> None:
    """The table refuses the last batch at shutdown (here it is renamed away): stopping still
    succeeds, the journal stays on disk, and the next start writes every entry once."""
    db = Database(settings.resolved_database_url)
    audit = settings.data_dir / "audit"
    log = AuditLog(db, audit, interval=30)
    await log.start()
    for n in range(3):
        log.record(None, f"t-{n}", "test", n)
    async with db.write() as session:
        await session.execute(text("ALTER TABLE audit_log RENAME TO audit_log_away"))
    await log.close()  # logs the failure, does not raise
    assert len(list(audit.glob("journal-*.jsonl"))) == 1
    async with db.write() as session:
        await session.execute(text("ALTER TABLE audit_log_away RENAME TO audit_log"))
    again = AuditLog(db, audit, interval=30)
    await again.start()  # replays the kept journal
    assert await _actions(db) == [f"t-{n}" for n in range(3)]
    assert list(audit.glob("journal-*")) == []
    await again.close()
    await db.close()


async def test_a_killed_process_loses_no_entry_and_none_is_written_twice(settings, tmp_path
                                                                        ) -> None:
    """A child process journals entries and dies by SIGKILL before any flush; the next
    start writes them. A journal whose entries had partly reached the table is replayed
    without duplicates."""
    journal_dir = settings.data_dir / "audit"
    code = f"""
import asyncio, os, signal
from yilian.server.core.audit import AuditLog
from yilian.server.core.db import Database

async def main():
    db = Database({settings.resolved_database_url!r})
    log = AuditLog(db, __import__("pathlib").Path({str(journal_dir)!r}), interval=60)
    await log.start()
    for n in range(40):
        log.record(None, f"t-{{n}}", "test", n)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""
    result = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", code],
                                     capture_output=True, text=True, timeout=60)
    assert result.returncode == -9, result.stderr
    db = Database(settings.resolved_database_url)
    await migrate(db)
    assert await _actions(db) == []
    # Ten of them had reached the table before the crash (a flush cut short before unlink).
    (journal,) = journal_dir.glob("journal-*.jsonl")
    from yilian.server.core.audit import _load, insert_entries
    first = [_load(line) for line in journal.read_bytes().splitlines(keepends=True)[:10]]
    async with db.write() as session:
        await insert_entries(session, first)
    log = AuditLog(db, journal_dir)
    await log.start()
    assert await _actions(db) == [f"t-{n}" for n in range(40)]
    await log.close()
    async with db.read() as session:
        total = await session.scalar(select(func.count()).select_from(AuditEntry)
                                     .where(AuditEntry.action.like("t-%")))
    assert total == 40
    await db.close()


async def test_an_unwritable_journal_refuses_instead_of_serving_unaudited(settings) -> None:
    db = Database(settings.resolved_database_url)
    journal_dir = settings.data_dir / "audit"
    log = AuditLog(db, journal_dir)
    await log.start()
    log.record(None, "t-ok", "test")
    await log.flush()
    os.chmod(journal_dir, 0o500)  # a new journal file cannot be created (as on a full disk)
    try:
        if os.geteuid() == 0:  # root ignores permissions: use a path that cannot exist
            log.dir = Path("/proc/yilian-no-such-dir")
        try:
            log.record(None, "t-lost", "test")
        except AuditUnavailable as exc:
            assert exc.status == 503 and exc.code == "audit_unavailable"
        else:
            raise AssertionError("an entry that cannot be journaled must be refused")
    finally:
        os.chmod(journal_dir, 0o700)
        log.dir = journal_dir
    await log.close()
    assert await _actions(db) == ["t-ok"]
    await db.close()
