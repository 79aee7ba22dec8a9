"""Database plumbing: declarative base, UTC timestamps, engine and session factories."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, MetaData, Row, Select, create_engine, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

T = TypeVar("T")

#: ``session.info`` key of the audit entries recorded through a session (``core.audit``).
logger = logging.getLogger(__name__)

PENDING_AUDIT = "yilian_audit"
#: Notifications added on a write session, handed to ``Database.notify_sink`` after COMMIT.
PENDING_NOTIFY = "yilian_notify"
AuditSink = Callable[[list[dict[str, Any]]], None]

class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as UTC on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _setup_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE for write sessions.

    Deferred transactions that read and then write fail with SQLITE_BUSY when another
    writer committed in between; taking the write lock up front makes writers queue instead.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("yilian_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """The engine plus read and write session factories."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": not url.startswith("sqlite")}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            _setup_sqlite(self.engine.sync_engine)
        # SQLite has one writer at a time. Queueing writers on an asyncio lock keeps them
        # from spinning in SQLite's busy handler (which sleeps in growing steps).
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None
        # A synchronous engine for write_sync, on a SQLite file (not an in-memory database,
        # which a second engine would not see).
        db_name = self.engine.url.database
        self._sync_url = self.engine.url.set(drivername="sqlite") if self.is_sqlite and \
            db_name not in (None, "", ":memory:") else None
        self._sync_engine: Engine | None = None
        write_engine = self.engine.execution_options(yilian_write=True)
        self.read_sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.write_sessions = async_sessionmaker(write_engine, expire_on_commit=False)
        #: Where audit entries recorded on sessions go (the app's ``AuditLog``); without one
        #: they are written to the table by the session itself.
        self.audit_sink: AuditSink | None = None
        #: Where notifications committed by a write session go for live delivery (the
        #: ``/notify`` namespace); without one they wait in the inbox.
        self.notify_sink: Callable[[list[Any]], None] | None = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; rolled back at the end. Audit entries recorded on it are
        logged when the block succeeds."""
        async with self.read_sessions() as session:
            yield session
            entries = session.info.pop(PENDING_AUDIT, None)
        if entries:
            await self.log_audit(entries)

    async def log_audit(self, entries: list[dict[str, Any]]) -> None:
        """Hand audit entries (``core.audit.entry``) to the audit log, or write them now."""
        if self.audit_sink is not None:
            self.audit_sink(entries)
        elif entries:
            async with self.write() as session:
                session.info[PENDING_AUDIT] = list(entries)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction, committed on success and rolled back on error.
        Audit entries recorded on it are logged once it has committed."""
        async with self._write_lock or nullcontext(), self.write_sessions() as session:
            async with session.begin():
                yield session
                await self._audit_before_commit(session)
            self._audit_after_commit(session)
            self._notify_after_commit(session)

    async def _audit_before_commit(self, session: AsyncSession) -> None:
        if self.audit_sink is None and PENDING_AUDIT in session.info:
            from yilian.server.core.audit import insert_entries

            await insert_entries(session, session.info.pop(PENDING_AUDIT))

    def _audit_after_commit(self, session: AsyncSession) -> None:
        entries = session.info.pop(PENDING_AUDIT, None)
        if entries and self.audit_sink is not None:
            self.audit_sink(entries)

    def _notify_after_commit(self, session: AsyncSession) -> None:
        rows = session.info.pop(PENDING_NOTIFY, None)
        if rows and self.notify_sink is not None:
            try:
                self.notify_sink(rows)
            except Exception:  # delivery is best effort: the rows are in the inbox
                logger.exception("live delivery of %d notifications failed", len(rows))

    async def write_sync(self, fn: Callable[[Session], T],
                         before_commit: Callable[[], None] | None = None) -> T:
        """Run ``fn`` with a synchronous session in one write transaction (committed when it
        returns, rolled back when it raises); ``before_commit``, blocking work such as file
        renames that must happen inside the transaction, runs after ``fn``, off the event loop.

        On a SQLite file the whole transaction is one worker-thread call on a pysqlite engine
        over the same file, queued on the same lock as :meth:`write`: one hop to a thread
        instead of one per statement, which under load is most of a transaction's time.
        Elsewhere ``fn`` runs through the async session (``run_sync``, on the loop: keep it to
        statements) and ``before_commit`` in a worker thread.
        """
        if self._sync_url is None:  # set only on a SQLite file, which has the lock
            async with self.write() as session:
                result = await session.run_sync(fn)
                if before_commit is not None:
                    await asyncio.to_thread(before_commit)
                return result
        assert self._write_lock is not None
        async with self._write_lock:
            # The thread cannot be stopped: if this await is cancelled, the lock is still held
            # until its transaction has ended, so writers stay one at a time.
            job = asyncio.ensure_future(asyncio.to_thread(self._run_write_sync, fn,
                                                          before_commit))
            try:
                return await asyncio.shield(job)
            except asyncio.CancelledError:
                await asyncio.wait([job])
                raise

    def _sync(self) -> Engine:
        """The synchronous pysqlite engine over the same file (made on first use; only on a
        SQLite file). Write transactions take ``execution_options(yilian_write=True)``."""
        if self._sync_engine is None:
            assert self._sync_url is not None
            engine = create_engine(self._sync_url, connect_args={"timeout": 30,
                                                                 "check_same_thread": False})
            _setup_sqlite(engine)
            self._sync_engine = engine
        return self._sync_engine

    def _run_write_sync(self, fn: Callable[[Session], T],
                        before_commit: Callable[[], None] | None) -> T:
        engine = self._sync().execution_options(yilian_write=True)
        with Session(engine, expire_on_commit=False) as session, session.begin():
            result = fn(session)
            if before_commit is not None:
                before_commit()
            return result

    async def rows(self, stmt: Select[Any]) -> list[Row[Any]]:
        """The rows of one SELECT, on the fastest path there is.

        On a SQLite file the whole read is one worker-thread call on the synchronous engine
        (WAL lets it read while others write) instead of a hop to aiosqlite's thread for each
        of connect, BEGIN, execute, fetch and ROLLBACK: what a viewer asking for dozens of
        images a second pays on every request. Elsewhere the async engine runs it."""
        if self._sync_url is None:
            async with self.engine.connect() as conn:
                return list(await conn.execute(stmt))
        return await asyncio.to_thread(self._run_rows, stmt)

    def _run_rows(self, stmt: Select[Any]) -> list[Row[Any]]:
        with self._sync().connect() as conn:
            return list(conn.execute(stmt))

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def migrate(self, script_location: Path) -> None:
        """Bring the schema to the newest revision of the Alembic scripts at ``script_location``."""
        async with self.engine.connect() as conn:
            await conn.run_sync(run_migrations, script_location)
            await conn.commit()

    async def close(self) -> None:
        """Dispose of the connection pools; safe to call twice."""
        await self.engine.dispose()
        engine, self._sync_engine = self._sync_engine, None
        if engine is not None:
            engine.dispose()


async def one_at_a_time(session: AsyncSession, *names: str) -> None:
    """Make the transactions that check something before writing it (is the name free? is
    this the last administrator?) take turns, per name, until this transaction ends.

    On PostgreSQL this is a transaction-scoped advisory lock per name, taken in one order so
    two transactions never wait on each other; the check that follows sees what the one before
    committed. On SQLite writers already go one at a time (``Database.write``)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({int.from_bytes(hashlib.blake2b(n.encode(), digest_size=8).digest(), "big",
                                  signed=True) for n in names})
    for key in keys:
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def alembic_config(script_location: Path, connection: Any = None) -> Any:
    """An Alembic config for the scripts at ``script_location``, optionally on a connection."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def run_migrations(sync_conn: Any, script_location: Path) -> None:
    """Upgrade to every head on an open synchronous connection."""
    from alembic import command

    command.upgrade(alembic_config(script_location, sync_conn), "head")
