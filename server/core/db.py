"""Database plumbing: declarative base, UTC timestamps, engine and session factories."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Engine,
    MetaData,
    Row,
    Select,
    bindparam,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.orm.util import identity_key
from sqlalchemy.util import greenlet_spawn

# Where the UTC column type and clock live; imported from here by much of the code base.
from yilian.server.core import lane
from yilian.server.core.utctime import UTCDateTime as UTCDateTime
from yilian.server.core.utctime import utcnow as utcnow
from yilian.server.core.writes import CHANGED_RETRIES, Changed

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

T = TypeVar("T")

logger = logging.getLogger(__name__)
#: ``session.info`` key of the audit entries recorded through a session (``core.audit``).
PENDING_AUDIT = "yilian_audit"
#: Notifications added on a write session, handed to ``Database.notify_sink`` after COMMIT.
PENDING_NOTIFY = "yilian_notify"
AuditSink = Callable[[list[dict[str, Any]]], None]

#: Inline write transactions on SQLite between two WAL checkpoints (``Database._inline``).
CHECKPOINT_EVERY = 200
#: SQLite's "busy" and "locked" result codes: another connection holds a lock.
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _busy(exc: OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (busy timeout 0)."""
    return getattr(exc.orig, "sqlite_errorcode", None) in _BUSY


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _setup_sqlite(engine: Engine, busy_ms: int = 30000) -> None:
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
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("yilian_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """The engine plus read and write session factories."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 30) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # No ping before each checkout (a round trip per transaction, 7 % of the loop's
            # time under load): a connection the server dropped fails its request with 503
            # database_unavailable (core.middleware), and the pool then replaces every
            # connection older than that failure.
            # Enough connections kept for the busy hour: an overflow connection is closed when
            # it comes back, and its successor connects and prepares every statement again
            # (a tenth of the CPU under load with 10 kept).
            kwargs.update(pool_size=pool_size, max_overflow=max(1, pool_size // 3),
                          pool_recycle=1800)
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
        self._inline_engine: Engine | None = None
        # Their write transactions' engines (an engine with execution options is an object
        # made per call: made once here, not per transaction).
        self._sync_writer: Engine | None = None
        self._inline_writer: Engine | None = None
        self._inline_read_engine: Engine | None = None
        self._inline_commits = 0
        self._checkpoint: asyncio.Future[None] | None = None
        write_engine = self.engine.execution_options(yilian_write=True)
        # Reads on PostgreSQL in autocommit: no BEGIN and ROLLBACK round trips around each
        # read (under READ COMMITTED each statement takes its own snapshot anyway, so a read
        # sees exactly what it saw inside a transaction). SQLite reads keep their transaction:
        # there it is what makes several statements see one snapshot.
        self._read_engine = self.engine if self.is_sqlite else self.engine.execution_options(
            isolation_level="AUTOCOMMIT")
        # PostgreSQL's reads and one-statement writes (read_sync, write_fused): core.lane.
        self._lane = None if self.is_sqlite else lane.Lane(self.engine, pool_size)
        self._sqlite_lane = lane.SqliteLane() if self.is_sqlite else None
        self.read_sessions = async_sessionmaker(self._read_engine, expire_on_commit=False)
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
            self._after_commit(session.info)

    async def _audit_before_commit(self, session: AsyncSession) -> None:
        if self.audit_sink is None and PENDING_AUDIT in session.info:
            from yilian.server.core.audit import insert_entries

            await insert_entries(session, session.info.pop(PENDING_AUDIT))


    async def write_sync(self, fn: Callable[[Session], T],
                         before_commit: Callable[[], None] | None = None) -> T:
        """Run ``fn`` with a synchronous session in one write transaction (committed when it
        returns, rolled back when it raises); ``before_commit``, blocking work such as file
        renames that must happen inside the transaction, runs after ``fn``, off the event loop.

        On a SQLite file the whole transaction runs on a pysqlite engine over the same file,
        queued on the same lock as :meth:`write`: without ``before_commit`` on the event loop's
        thread (:meth:`_inline_write`), else (or when another process holds SQLite's lock)
        as one worker-thread call: never a hop to a thread per statement, which under load was
        most of a transaction's time. Elsewhere (PostgreSQL) the whole transaction, BEGIN to
        COMMIT, runs in one greenlet over the async engine's synchronous face (what
        ``run_sync`` does, without an ``AsyncSession``'s own awaits for begin, commit and
        close: a third of a booking's CPU there); with ``before_commit``, through the async
        session, ``before_commit`` in a worker thread. Either way: keep ``fn`` to statements.
        """
        if self._sync_url is None:  # set only on a SQLite file, which has the lock
            if self._write_lock is None and before_commit is None:
                result, info = await greenlet_spawn(self._run_write_sync, fn, None,
                                                    self.engine.sync_engine)
                self._after_commit(info)
                return result
            async with self.write() as session:
                result = await session.run_sync(fn)
                if before_commit is not None:
                    await asyncio.to_thread(before_commit)
                return result
        assert self._write_lock is not None
        async with self._write_lock:
            done = self._inline_write(fn) if before_commit is None else None
            if done is None:
                # The thread cannot be stopped: if this await is cancelled, the lock is still
                # held until its transaction has ended, so writers stay one at a time.
                job = asyncio.ensure_future(asyncio.to_thread(self._run_write_sync, fn,
                                                              before_commit))
                try:
                    done = await asyncio.shield(job)
                except asyncio.CancelledError:
                    await asyncio.wait([job])
                    raise
        result, info = done
        self._after_commit(info)
        return result

    async def write_fused(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn``, a change whose writes are one ``core.writes.Writes`` batch with one
        guard at most, as :meth:`write_sync` does; on PostgreSQL without a transaction: there
        the batch is one statement, atomic by itself, so ``fn``'s reads and that statement
        each run in autocommit (a booking: two statements, where BEGIN, five and COMMIT were
        seven). What ``fn`` read may have changed by the time it writes: its guard then misses
        and ``fn`` raises ``Changed``, and runs again on what is there now (``CHANGED_RETRIES``
        times at most). On PostgreSQL ``fn`` runs on a ``core.lane`` connection; without an
        audit sink (a bare ``Database``), and on SQLite, each run is a :meth:`write_sync`
        transaction."""
        for attempt in range(CHANGED_RETRIES):
            try:
                if self._write_lock is not None or self.audit_sink is None:
                    return await self.write_sync(fn)
                result, info = await greenlet_spawn(lane.run, self._lane,
                                                    self._read_engine.sync_engine, fn)
            except Changed:
                if attempt == CHANGED_RETRIES - 1:
                    raise
                continue
            self._after_commit(info)
            return result
        raise AssertionError("unreachable")

    def _inline_write(self, fn: Callable[[Session], T]) -> tuple[T, dict[str, Any]] | None:
        """The write transaction of ``fn`` on the event loop's own thread (under the write
        lock), or None when SQLite is busy (another process holds its write lock) and the
        caller should wait for it in a worker thread instead.

        Short transactions run fastest here: a worker thread must win the GIL back from a
        busy event loop after each statement (up to the 5 ms switch interval each time),
        which under load made a 1.5 ms booking hold the write lock for 15 ms. The inline
        engine never waits for a lock (busy timeout 0), so the loop is never parked on one.
        """
        try:
            done = self._run_write_sync(fn, None, engine=self._inline())
        except OperationalError as exc:
            if _busy(exc):
                return None
            raise
        self._note_inline_commit()
        return done

    def _sync(self) -> Engine:
        """The synchronous pysqlite engine over the same file (made on first use; only on a
        SQLite file); its write transactions go through :meth:`_sync_write`."""
        if self._sync_engine is None:
            assert self._sync_url is not None
            engine = create_engine(self._sync_url, connect_args={"timeout": 30,
                                                                 "check_same_thread": False})
            _setup_sqlite(engine)
            self._sync_engine = engine
            self._sync_writer = engine.execution_options(yilian_write=True)
        return self._sync_engine

    def _sync_write(self) -> Engine:
        """:meth:`_sync`'s engine with ``yilian_write`` (``BEGIN IMMEDIATE``)."""
        self._sync()
        assert self._sync_writer is not None
        return self._sync_writer

    def _inline(self) -> Engine:
        """A pysqlite engine for :meth:`_inline_write`'s transactions: used on the
        event loop's thread only, with a busy timeout of 0."""
        if self._inline_writer is None:
            engine = self._loop_engine()

            @event.listens_for(engine, "connect")
            def _no_checkpoints(dbapi_conn: Any, _record: Any) -> None:
                # A checkpoint copies the WAL into the database and syncs it to disk: not on
                # the event loop (see _note_inline_commit).
                dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

            self._inline_engine = engine
            self._inline_writer = engine.execution_options(yilian_write=True)
        return self._inline_writer

    def _note_inline_commit(self) -> None:
        """Checkpoint the WAL in a worker thread every CHECKPOINT_EVERY inline commits (their
        connection does not: see :meth:`_inline`). PASSIVE: it waits for nobody."""
        self._inline_commits += 1
        if self._inline_commits >= CHECKPOINT_EVERY and (
                self._checkpoint is None or self._checkpoint.done()):
            self._inline_commits = 0
            self._checkpoint = asyncio.ensure_future(asyncio.to_thread(self._run_checkpoint))

    def _run_checkpoint(self) -> None:
        try:
            with self._sync().connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # the next one will try again; SQLite's WAL is still correct
            logger.exception("checkpointing the SQLite WAL failed")

    def _run_write_sync(self, fn: Callable[[Session], T],
                        before_commit: Callable[[], None] | None,
                        engine: Engine | None = None) -> tuple[T, dict[str, Any]]:
        with lane.session(engine or self._sync_write(), self._sqlite_lane) as session:
            with session.begin():
                result = fn(session)
                if before_commit is not None:
                    before_commit()
                if self.audit_sink is None and PENDING_AUDIT in session.info:
                    from yilian.server.core.audit import insert_entries_sync

                    insert_entries_sync(session, session.info.pop(PENDING_AUDIT))
            return result, dict(session.info)

    def _after_commit(self, info: dict[str, Any]) -> None:
        """Hand what a committed transaction recorded to the audit log and live delivery."""
        entries = info.pop(PENDING_AUDIT, None)
        if entries and self.audit_sink is not None:
            self.audit_sink(entries)
        rows = info.pop(PENDING_NOTIFY, None)
        if rows and self.notify_sink is not None:
            try:
                self.notify_sink(rows)
            except Exception:  # delivery is best effort: the rows are in the inbox
                logger.exception("live delivery of %d notifications failed", len(rows))

    async def read_sync(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` with a synchronous session for reads (rolled back at the end); audit
        entries it records are logged when it returns.

        On a SQLite file ``fn`` runs on the event loop's own thread, on a pysqlite engine that
        never waits (busy timeout 0; WAL: a reader does not wait for the writer): a hop to a
        worker thread must win the GIL back from a busy loop, up to 5 ms a time, which made
        the busiest lists (an expert's slots) the slowest answers under load. If SQLite is
        busy after all (a checkpoint's moment, another process), it runs in a worker thread
        instead. On PostgreSQL ``fn`` runs in one greenlet on a ``core.lane`` connection, in
        autocommit (no BEGIN and ROLLBACK round trips; its Core SELECTs on asyncpg itself)."""
        if self._sync_url is None:
            if self._lane is not None:
                result, info = await greenlet_spawn(lane.run, self._lane,
                                                    self._read_engine.sync_engine, fn)
                self._after_commit(info)
                return result
            async with self.read() as session:
                return await session.run_sync(fn)
        try:
            result, info = self._run_read_sync(fn, self._inline_reader())
        except OperationalError as exc:
            if not _busy(exc):
                raise
            result, info = await asyncio.to_thread(self._run_read_sync, fn)
        self._after_commit(info)
        return result

    def _inline_reader(self) -> Engine:
        """A pysqlite engine for :meth:`read_sync` on the event loop's thread (busy timeout 0)."""
        if self._inline_read_engine is None:
            self._inline_read_engine = self._loop_engine()
        return self._inline_read_engine

    def _loop_engine(self) -> Engine:
        """A pysqlite engine over the file for work on the event loop's thread: it never waits
        for a lock (busy timeout 0), and its connections go back to the pool without a reset
        (every transaction on it ends in the session's own COMMIT or ROLLBACK)."""
        assert self._sync_url is not None
        engine = create_engine(self._sync_url, pool_reset_on_return=None,
                               connect_args={"timeout": 0, "check_same_thread": False})
        _setup_sqlite(engine, busy_ms=0)
        return engine

    def _run_read_sync(self, fn: Callable[[Session], T], engine: Engine | None = None
                       ) -> tuple[T, dict[str, Any]]:
        with lane.session(engine or self._sync(), self._sqlite_lane) as session:
            return fn(session), dict(session.info)

    async def rows(self, stmt: Select[Any]) -> list[Row[Any]]:
        """The rows of one SELECT, on the fastest path there is.

        On a SQLite file the whole read is one worker-thread call on the synchronous engine
        (WAL lets it read while others write) instead of a hop to aiosqlite's thread for each
        of connect, BEGIN, execute, fetch and ROLLBACK: what a viewer asking for dozens of
        images a second pays on every request. Elsewhere the async engine runs it."""
        if self._sync_url is None:
            async with self._read_engine.connect() as conn:
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
        if self._lane is not None:
            await self._lane.close()
        await self.engine.dispose()
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        for engine in (self._sync_engine, self._inline_engine, self._inline_read_engine):
            if engine is not None:
                engine.dispose()
        self._sync_engine = self._inline_engine = self._sync_writer = self._inline_writer = None
        self._inline_read_engine = None


_M = TypeVar("_M")
_BY_ID: dict[type[Any], Select[Any]] = {}


def by_ids(session: Session, model: type[_M], ids: Iterable[int]) -> dict[int, _M]:
    """Rows of ``model`` by primary key: those the session already holds cost no SQL, the rest
    one statement (built once per model: building a SELECT costs more CPU than SQLite takes
    to run it)."""
    found: dict[int, _M] = {}
    missing = []
    for key in set(ids):
        obj = session.identity_map.get(identity_key(model, key))
        if obj is not None:
            found[key] = obj  # type: ignore[assignment]
        else:
            missing.append(key)
    if missing:
        stmt = _BY_ID.get(model)
        if stmt is None:
            pk = inspect(model).primary_key[0]
            stmt = _BY_ID[model] = select(model).where(pk.in_(bindparam("ids", expanding=True)))
        for obj in session.execute(stmt, {"ids": missing}).scalars():
            found[obj.id] = obj
    return found


def by_id(session: Session, model: type[_M], key: int) -> _M | None:
    """One row of ``model`` by primary key (:func:`by_ids`); ``session.get`` builds its query
    on every call that misses the identity map."""
    return by_ids(session, model, (key,)).get(key)


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


def run_migrations(sync_conn: Any, script_location: Path) -> None:
    """Upgrade to every head on an open synchronous connection."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")
