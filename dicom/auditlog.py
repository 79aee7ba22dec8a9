"""Audit rows for image access, written in batches off the request path.

A viewer scrolling a series makes dozens of requests a second; one write transaction per
frame would serialise them all on the database's write lock. Entries are queued in memory and
flushed every ``interval`` seconds (or at ``max_pending``) in one transaction, and at shutdown;
a failed flush keeps its entries for the next attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy import insert

from server import keys
from server.db import Database, utcnow
from server.models import AuditEntry

logger = logging.getLogger(__name__)


class AuditBuffer:
    """Queued audit entries and the task that writes them."""

    def __init__(self, db: Database, interval: float = 0.25, max_pending: int = 500) -> None:
        self.db, self.interval, self.max_pending = db, interval, max_pending
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closing = False

    def add(self, user_id: int | None, institution_id: int | None, action: str,
            resource_type: str, resource_id: str | None, ip: str | None,
            detail: dict[str, Any] | None) -> None:
        """Queue one entry, stamped now."""
        self._pending.append({"at": utcnow(), "user_id": user_id,
                              "institution_id": institution_id, "action": action,
                              "resource_type": resource_type, "resource_id": resource_id,
                              "patient_id": None, "ip": ip, "detail": detail})
        if len(self._pending) >= self.max_pending:
            self._wake.set()

    async def flush(self) -> None:
        """Write everything queued so far."""
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                async with self.db.write() as session:
                    await session.execute(insert(AuditEntry), batch)
            except Exception:
                self._pending[:0] = batch
                raise

    async def _run(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("writing %d audit entries failed; will retry",
                                 len(self._pending))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="yilian-dicom-audit")

    async def close(self) -> None:
        """Stop the writer and flush what is left; safe to call twice.

        The writer is asked to stop, not cancelled: a cancel landing inside a flush's
        transaction could leave its connection holding SQLite's write lock, and the final
        flush below would then wait out the busy timeout ("database is locked")."""
        task, self._task = self._task, None
        if task is not None:
            self._closing = True
            self._wake.set()
            await asyncio.gather(task, return_exceptions=True)
        await self.flush()


async def dicom_audit_ctx(app: web.Application) -> AsyncIterator[None]:
    """The audit writer for image access; flushed before the database closes."""
    buffer = AuditBuffer(app[keys.DATABASE])
    buffer.start()
    app[keys.DICOM_AUDIT] = buffer
    try:
        yield
    finally:
        await buffer.close()
