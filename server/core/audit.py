"""The audit log: one path for every record of who touched which patient data.

Handlers call :func:`record` on their database session; the entry reaches the log when the
session's work is done (after commit, for a write), so a refused or failed change leaves no
"done" entry. The log (:class:`AuditLog`) appends each entry to a journal file at once and
writes entries to the ``audit_log`` table in batches, in order, off the request path:

- a crash of the process loses nothing: the journal is in the kernel's page cache, and the
  next start replays every journal that no running process holds;
- a crash of the machine loses at most ``fsync_interval`` seconds of entries;
- a replayed entry that had already reached the table is not written twice (``uid``).

Without an :class:`AuditLog` (command-line tools), entries are written in the same
transaction as the change, or in their own right after a read.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

import orjson
from aiohttp import web
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from yilian.server.core import keys
from yilian.server.core.db import PENDING_AUDIT, Database, utcnow
from yilian.server.core.errors import YilianError
from yilian.server.core.models import AuditEntry, User

logger = logging.getLogger(__name__)

Entry = dict[str, Any]


class AuditUnavailable(YilianError):
    """The journal cannot be written (e.g. a full disk): no unaudited access is served."""

    status = 503
    code = "audit_unavailable"


def entry(user: User | None, action: str, resource_type: str, resource_id: object = None, *,
          patient_id: int | None = None, ip: str | None = None,
          detail: dict[str, Any] | None = None, user_id: int | None = None,
          institution_id: int | None = None) -> Entry:
    """One audit entry, stamped now."""
    return {
        "uid": uuid.uuid4().hex,
        "at": utcnow(),
        "user_id": user.id if user else user_id,
        "institution_id": user.institution_id if user else institution_id,
        "action": action,
        "resource_type": resource_type,
        "resource_id": None if resource_id is None else str(resource_id)[:80],
        "patient_id": patient_id,
        "ip": ip,
        "detail": detail,
    }


def record(session: AsyncSession | Session, user: User | None, action: str, resource_type: str,
           resource_id: object = None, *, patient_id: int | None = None, ip: str | None = None,
           detail: dict[str, Any] | None = None) -> None:
    """Audit an access made through ``session``; logged once the session's work succeeds."""
    session.info.setdefault(PENDING_AUDIT, []).append(
        entry(user, action, resource_type, resource_id, patient_id=patient_id, ip=ip,
              detail=detail))


async def insert_entries(session: AsyncSession, entries: Iterable[Entry]) -> None:
    """Write entries to the table in their order (in the caller's transaction)."""
    await session.run_sync(insert_entries_sync, list(entries))


def insert_entries_sync(session: Session, entries: Iterable[Entry]) -> None:
    """:func:`insert_entries` on a synchronous session (``Database.write_sync``)."""
    rows = list(entries)
    if rows:  # Core on the session's connection: the ORM's bulk path costs more than the rows
        session.connection().execute(insert(_TABLE), rows)


_TABLE = cast(Table, AuditEntry.__table__)


class _Segment:
    """One journal file, locked while this process may still write or replay it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.entries: list[Entry] = []

    def append(self, lines: bytes) -> None:
        view = memoryview(lines)
        while view:
            view = view[os.write(self.fd, view):]

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self.fd)

    def keep(self) -> None:
        """Leave the journal on disk for ``replay`` (synced; unlocked once closed)."""
        os.fsync(self.fd)
        os.close(self.fd)


def _dump(e: Entry) -> bytes:
    return orjson.dumps(e, default=str) + b"\n"


def _load(line: bytes) -> Entry:
    e = orjson.loads(line)
    e["at"] = datetime.fromisoformat(e["at"])
    return dict(e)


def _read_journal(fd: int) -> list[Entry]:
    with open(fd, "rb", closefd=False) as f:
        # A line cut short by the crash (no newline) was never acknowledged: skip it.
        return [_load(line) for line in f if line.endswith(b"\n")]


class AuditLog:
    """Journaled, batched audit writing (see the module's description)."""

    def __init__(self, db: Database, journal_dir: Path, *, interval: float = 0.25,
                 max_pending: int = 500, fsync_interval: float = 1.0) -> None:
        self.db, self.dir = db, journal_dir
        self.interval, self.max_pending, self.fsync_interval = interval, max_pending, fsync_interval
        self._lock = threading.Lock()  # entries may come from worker threads (DICOM ingest)
        self._current: _Segment | None = None
        self._closed_segments: list[_Segment] = []
        self._flush_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._synced_at = time.monotonic()

    # -- recording -----------------------------------------------------------------------

    def record(self, user: User | None, action: str, resource_type: str,
               resource_id: object = None, **fields: Any) -> None:
        """Audit one access now (no database session involved)."""
        self.extend([entry(user, action, resource_type, resource_id, **fields)])

    def extend(self, entries: list[Entry]) -> None:
        """Journal entries and queue them for the table; thread-safe."""
        if not entries:
            return
        data = b"".join(_dump(e) for e in entries)
        with self._lock:
            if self._current is None:
                self._current = self._new_segment()
            try:
                self._current.append(data)
            except OSError as exc:
                logger.error("the audit journal cannot be written: %s", exc)
                raise AuditUnavailable("the audit log cannot be written; try again later") \
                    from None
            self._current.entries.extend(entries)
            pending = len(self._current.entries)
        if pending >= self.max_pending and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _new_segment(self) -> _Segment:
        name = f"journal-{os.getpid()}-{time.time_ns()}-{uuid.uuid4().hex[:8]}.jsonl"
        try:
            return _Segment(self.dir / name)
        except OSError as exc:
            logger.error("the audit journal cannot be created: %s", exc)
            raise AuditUnavailable("the audit log cannot be written; try again later") from None

    # -- writing ---------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write every entry recorded so far to the table, in order."""
        async with self._flush_lock:
            with self._lock:
                if self._current is not None and self._current.entries:
                    self._closed_segments.append(self._current)
                    self._current = None
            while self._closed_segments:
                segment = self._closed_segments[0]
                # One worker-thread call on SQLite: the batch never waits on the event loop
                # between its statements while it holds the write lock.
                await self.db.write_sync(partial(insert_entries_sync, entries=segment.entries))
                self._closed_segments.pop(0)
                segment.remove()

    async def _sync(self) -> None:
        with self._lock:
            fd = self._current.fd if self._current is not None else None
        if fd is not None:
            try:
                await asyncio.to_thread(os.fsync, fd)
            except OSError:  # closed meanwhile by a flush: its entries are in the table
                pass
        self._synced_at = time.monotonic()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                if time.monotonic() - self._synced_at >= self.fsync_interval:
                    await self._sync()
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("writing audit entries failed; they stay journaled and are "
                                 "retried")

    async def replay(self) -> int:
        """Write the journals left by processes that stopped without flushing; returns how
        many entries reached the table."""
        written = 0
        for path in sorted(self.dir.glob("journal-*.jsonl")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a running process holds it
                entries = await asyncio.to_thread(_read_journal, fd)
                written += await self._write_missing(entries)
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        if written:
            logger.warning("wrote %d audit entries journaled before an unclean stop", written)
        return written

    async def _write_missing(self, entries: list[Entry]) -> int:
        async with self.db.write() as session:
            uids = [e["uid"] for e in entries]
            known: set[str] = set()
            for i in range(0, len(uids), 500):
                found = await session.execute(
                    select(AuditEntry.uid).where(AuditEntry.uid.in_(uids[i:i + 500])))
                known.update(uid for uid in found.scalars() if uid is not None)
            missing = [e for e in entries if e["uid"] not in known]
            await insert_entries(session, missing)
        return len(missing)

    async def start(self) -> None:
        """Replay what a crash left, then take entries from the database's sessions."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await self.replay()
        self._loop = asyncio.get_running_loop()
        self.db.audit_sink = self.extend
        self._task = asyncio.create_task(self._run(), name="yilian-audit-writer")

    async def close(self) -> None:
        """Stop the writer and write what is left; safe to call twice.

        The writer is asked to stop, not cancelled: a cancel landing inside a flush's
        transaction could leave its connection holding SQLite's write lock."""
        if self.db.audit_sink == self.extend:
            self.db.audit_sink = None
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            await asyncio.gather(task, return_exceptions=True)
        try:
            await self.flush()
        except Exception:
            # The table refused the last batches (the database locked past its busy timeout,
            # or gone): they stay in their journal files, on disk, which the next start
            # writes (``replay``). Stopping does not fail for it.
            logger.exception("writing the last audit entries failed; their journals are kept "
                             "for the next start")
            with self._lock:
                kept, self._closed_segments = self._closed_segments, []
            for segment in kept:
                segment.keep()
        with self._lock:
            if self._current is not None:  # empty: nothing to keep
                self._current.remove()
                self._current = None


async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
    """The audit log of the app; flushed before the database closes."""
    settings = app[keys.SETTINGS]
    log = app[keys.AUDIT] = AuditLog(app[keys.DATABASE], settings.data_dir / "audit")
    await log.start()
    try:
        yield
    finally:
        await log.close()
