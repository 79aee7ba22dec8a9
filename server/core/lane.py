"""The busiest requests' statements on PostgreSQL, without SQLAlchemy's execution layer.

An expert search, an expert's slots, a request and an action on it are each one to three
Core ``SELECT`` statements (the writes of a change are one, ``core.writes``). Through an ORM
session on SQLAlchemy's pool, each such request paid ~110 µs for the session and the pool's
checkout and return, and each statement ~115 µs for SQLAlchemy's execution (the statement's
cache key, its parameters, the result's metadata and rows) on top of asyncpg's own work:
more than the database took to answer. Here:

- :class:`Lane` keeps up to ``size`` asyncpg connections open, each opened through the
  engine's dialect (SQLAlchemy's own codecs and settings) and then kept out of its pool, and
  hands each to one request at a time: no reset, no isolation level to set and put back,
  nothing to wait for. Every statement on it runs in autocommit (``Database.read_sync``,
  ``Database.write_fused``).
- :class:`LaneConnection` runs a Core ``SELECT`` it has compiled once (kept by the
  statement's identity: the hot statements are module constants): asyncpg's prepared
  statement, the parameters and rows passed through the columns' own SQLAlchemy processors
  (UTC datetimes, JSON). Any other statement goes to an ordinary SQLAlchemy connection.
- :class:`LaneSession` is an ordinary ``Session`` whose ``connection()`` is the lane's: the
  same code runs on SQLite's engines unchanged, and ORM queries still work.

Errors come out as SQLAlchemy's: a broken connection as a ``DBAPIError`` with
``connection_invalidated`` (503 ``database_unavailable``, and every idle lane connection
is closed, as SQLAlchemy's pool drops those older than a failure), a constraint as an
``IntegrityError`` (409).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import asyncpg
from sqlalchemy import Connection, Engine, Insert, Select, Update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InvalidRequestError,
    MultipleResultsFound,
    NoResultFound,
    OperationalError,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

logger = logging.getLogger(__name__)

#: Compiled statements kept (the hot ones are a few dozen module constants).
MAX_COMPILED = 512
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}
_REQUIRED = object()
#: PostgreSQL's errors that end the connection (a restart, ``pg_terminate_backend``); any
#: other leaves it as it was, unless it is closed.
_SERVER_ENDED = (asyncpg.PostgresConnectionError, asyncpg.exceptions.AdminShutdownError,
                 asyncpg.exceptions.CrashShutdownError, asyncpg.exceptions.CannotConnectNowError)


class _Row(tuple):  # type: ignore[type-arg]
    """A result row: a tuple whose columns are also attributes and a ``_mapping``."""

    __slots__ = ()
    _keys: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._keys[name]]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._keys, self, strict=False))


class _Compiled:
    """A statement compiled once for the lane's driver: its SQL, where each positional
    parameter comes from, and how each column's value is read."""

    __slots__ = ("stmt", "sql", "binds", "results", "row")

    def __init__(self, stmt: Any, compiled: Any, dialect: Dialect) -> None:
        self.stmt, self.sql = stmt, compiled.string
        processors = compiled._bind_processors
        self.binds = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            default = _REQUIRED if bind.required else bind.effective_value
            self.binds.append((name, default, processors.get(name)))
        self.results = [entry.type._cached_result_processor(dialect, None)
                        for entry in compiled._result_columns]
        keys: dict[str, int] = {}
        for i, entry in enumerate(compiled._result_columns):
            keys.setdefault(entry.keyname, i)
        self.row = type("Row", (_Row,), {"__slots__": (), "_keys": keys})

    @classmethod
    def of(cls, stmt: Any, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled | None:
        """``stmt`` compiled (an INSERT or UPDATE for the parameters ``keys``, as SQLAlchemy
        compiles it), or None if the lane cannot run it as it stands: not a Core SELECT,
        INSERT or UPDATE; expanding parameters; defaults computed in Python."""
        if isinstance(stmt, Select):
            compiled = stmt.compile(dialect=dialect)
        elif isinstance(stmt, Insert | Update) and dialect.name == "sqlite":
            compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
            if compiled.insert_prefetch or compiled.update_prefetch:
                return None
        else:
            return None
        if (compiled.post_compile_params or compiled.literal_execute_params
                or any(b.callable for b in compiled.binds.values())):
            return None
        return cls(stmt, compiled, dialect)

    def args(self, params: Mapping[str, Any] | None) -> list[Any]:
        params = params or {}
        out = []
        for name, default, process in self.binds:
            value = params.get(name, default)
            if value is _REQUIRED:
                raise InvalidRequestError(f"a value is required for bind parameter {name!r}")
            out.append(process(value) if process is not None else value)
        return out

    def rows(self, records: list[Any]) -> list[_Row]:
        row, results = self.row, self.results
        if not any(results):
            return [row(r) for r in records]
        pairs = list(enumerate(results))
        return [row([p(r[i]) if p is not None else r[i] for i, p in pairs]) for r in records]


class Result:
    """The rows of one statement, read the ways our code reads a SQLAlchemy result."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return list(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise MultipleResultsFound("more than one row where one was expected")
        return self.first()

    def one(self) -> Any:
        row = self.one_or_none()
        if row is None:
            raise NoResultFound("no row where one was expected")
        return row

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> Result:
        return Result([r[0] for r in self._rows])


class Compiler:
    """The statements compiled for one dialect, each kept by its identity."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._compiled: dict[tuple[int, tuple[str, ...]], tuple[Any, _Compiled | None]] = {}

    def compiled(self, stmt: Any, params: Mapping[str, Any] | None) -> _Compiled | None:
        """``stmt`` compiled for the lane, or None when it takes SQLAlchemy's own path."""
        keys = () if isinstance(stmt, Select) else tuple(params or ())
        found = self._compiled.get((id(stmt), keys))
        if found is not None and found[0] is stmt:
            return found[1]
        if len(self._compiled) >= MAX_COMPILED:
            self._compiled.clear()
        made = _Compiled.of(stmt, self.dialect, keys)
        # The statement kept with it: its id stays its own while it is here.
        self._compiled[(id(stmt), keys)] = (stmt, made)
        return made


class Lane(Compiler):
    """Up to ``size`` asyncpg connections, opened on demand through ``engine``'s dialect and
    kept; one request at a time on each."""

    def __init__(self, engine: AsyncEngine, size: int) -> None:
        super().__init__(engine.dialect)
        self.engine, self.size = engine, size
        self._idle: list[asyncpg.Connection] = []
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._open = 0

    def idle(self) -> asyncpg.Connection | None:
        """An idle connection, if there is one (taken: :meth:`release` it)."""
        return self._idle.pop() if self._idle else None

    async def acquire(self) -> Any:
        if self._idle:
            return self._idle.pop()
        if self._open < self.size:
            self._open += 1
            try:
                raw = await self.engine.raw_connection()
                driver = raw.driver_connection
                raw.detach()  # ours from now on: the pool neither counts nor resets it
            except BaseException:
                self._open -= 1
                self._wake()
                raise
            return driver
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result(), broken=False)
            raise

    def release(self, driver: asyncpg.Connection, broken: bool) -> None:
        if broken:
            self._discard(driver)
            # Those idle now were opened before the failure: a restarted server dropped them
            # too, and each would fail a request of its own before being replaced.
            while self._idle:
                self._discard(self._idle.pop())
            self._wake()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(driver)
                return
        self._idle.append(driver)

    def _wake(self) -> None:
        """Let a waiter open a connection in place of a closed one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(_Reopen())
                return

    def _discard(self, driver: asyncpg.Connection) -> None:
        self._open -= 1
        try:
            driver.terminate()
        except Exception:  # closed already
            logger.debug("closing a lane connection failed", exc_info=True)

    async def close(self) -> None:
        while self._idle:
            driver = self._idle.pop()
            self._open -= 1
            try:
                await driver.close(timeout=5)
            except Exception:
                driver.terminate()


class _Reopen(Exception):
    """A lane connection was closed: the waiter opens one itself (``Database`` retries)."""


class LaneConnection:
    """What ``LaneSession.connection()`` gives: ``execute`` and ``scalar`` for Core SELECTs
    through ``fetch`` (SQL and positional parameters in, rows out), anything else on
    ``fallback()``'s connection."""

    def __init__(self, compiler: Compiler, fetch: Callable[[str, list[Any]], list[Any]],
                 fallback: Callable[[], Connection], options: Mapping[str, Any],
                 dispatch: Any) -> None:
        self.compiler, self.fetch, self._fallback = compiler, fetch, fallback
        self.dialect, self._options = compiler.dialect, options
        # The engine's before_cursor_execute listeners hear of each statement, as they would
        # through SQLAlchemy (bench/sqlcount, tests counting statements).
        self._heard = dispatch.before_cursor_execute

    def get_execution_options(self) -> Mapping[str, Any]:
        return self._options

    def execute(self, stmt: Any, params: Mapping[str, Any] | None = None) -> Any:
        compiled = (self.compiler.compiled(stmt, params)
                    if params is None or isinstance(params, Mapping) else None)  # not many
        if compiled is None:
            return self._fallback().execute(stmt, params)
        args = compiled.args(params)
        if self._heard:
            self._heard(None, None, compiled.sql, args, None, False)
        return Result(compiled.rows(self.fetch(compiled.sql, args)))

    def scalar(self, stmt: Any, params: Mapping[str, Any] | None = None) -> Any:
        return self.execute(stmt, params).scalar()


class _PgFetch:
    """Rows from the lane's asyncpg connection (in a greenlet), errors as SQLAlchemy's."""

    __slots__ = ("driver", "broken")

    def __init__(self, driver: asyncpg.Connection) -> None:
        self.driver, self.broken = driver, False

    def __call__(self, sql: str, args: list[Any]) -> list[Any]:
        self.broken = True  # until asyncpg answers: a cancelled wait leaves it mid-statement
        try:
            records = await_only(self.driver.fetch(sql, *args))
        except asyncpg.IntegrityConstraintViolationError as exc:
            self.broken = False
            raise IntegrityError(sql, None, exc) from exc
        except asyncpg.exceptions._base.DataError as exc:  # a parameter refused, not sent
            self.broken = False
            raise DBAPIError(sql, None, exc) from exc
        except asyncpg.PostgresError as exc:
            self.broken = isinstance(exc, _SERVER_ENDED) or self.driver.is_closed()
            raise DBAPIError(sql, None, exc, connection_invalidated=self.broken) from exc
        except Exception as exc:  # the client's side (closed, a protocol state, the socket):
            # what the connection is in is unknown, so it goes.
            raise DBAPIError(sql, None, exc, connection_invalidated=True) from exc
        self.broken = False
        return cast(list[Any], records)


def _sqlite_fetch(dbapi: sqlite3.Connection) -> Callable[[str, list[Any]], list[Any]]:
    """Rows from a pysqlite connection (in the transaction its session began), errors as
    SQLAlchemy's (``OperationalError`` keeps SQLite's code: ``Database`` looks at busy)."""

    def fetch(sql: str, args: list[Any]) -> list[Any]:
        try:
            return dbapi.execute(sql, args).fetchall()
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(sql, None, exc) from exc
        except sqlite3.OperationalError as exc:
            raise OperationalError(sql, None, exc) from exc
        except sqlite3.Error as exc:
            raise DBAPIError(sql, None, exc) from exc

    return fetch


class LaneSession(Session):
    """A Session whose ``connection()`` is a :class:`LaneConnection`: the one given, or on
    SQLite one made on first use (``sqlite``) over the session's own connection."""

    def __init__(self, bind: Any, lane: LaneConnection | None,
                 sqlite: SqliteLane | None = None) -> None:
        super().__init__(bind, expire_on_commit=False)
        self.lane, self._sqlite = lane, sqlite

    def connection(self, bind_arguments: Any = None, execution_options: Any = None
                   ) -> Connection:
        if bind_arguments is None and execution_options is None:
            if self.lane is None and self._sqlite is not None:
                self.lane = self._sqlite.lane(super().connection())
            if self.lane is not None:
                return cast(Connection, self.lane)
        return super().connection(bind_arguments, execution_options)


def run(lane: Lane, bind: Any, fn: Callable[[Session], Any]) -> tuple[Any, dict[str, Any]]:
    """Run ``fn`` (in a greenlet) on a :class:`LaneSession` over one of the lane's
    connections, in autocommit; its result and what it recorded on ``session.info``."""
    driver = lane.idle()  # no await: an idle connection is the usual case
    while driver is None:
        try:
            driver = await_only(lane.acquire())
        except _Reopen:
            continue
    fetch = _PgFetch(driver)
    session = LaneSession(bind, None)
    session.lane = LaneConnection(lane, fetch, lambda: Session.connection(session),
                                  _AUTOCOMMIT, lane.engine.sync_engine.dispatch)
    try:
        result = fn(session)
        return result, dict(session.info)
    finally:
        # Closed only if it went beyond the lane (an ORM query, a statement of another
        # kind): else there is nothing to close, and closing cost a tenth of a read.
        if session.in_transaction() or session.identity_map:
            session.close()
        lane.release(driver, fetch.broken or driver.is_closed())


class SqliteLane:
    """Core SELECTs on SQLite's pysqlite connections (``Database``'s synchronous engines)."""

    def __init__(self) -> None:
        self.compiler: Compiler | None = None

    def lane(self, conn: Connection) -> LaneConnection:
        """A lane over ``conn`` (its transaction begun): Core SELECTs go to pysqlite directly,
        in that transaction."""
        if self.compiler is None:
            self.compiler = Compiler(conn.dialect)
        dbapi = conn.connection.dbapi_connection
        assert isinstance(dbapi, sqlite3.Connection)
        return LaneConnection(self.compiler, _sqlite_fetch(dbapi), lambda: conn,
                              conn.get_execution_options(), conn.dispatch)


def session(engine: Engine, sqlite: SqliteLane | None) -> Session:
    """A session on a synchronous engine; with ``sqlite``, one whose Core SELECTs take the
    lane."""
    if sqlite is None:
        return Session(engine, expire_on_commit=False)
    return LaneSession(engine, None, sqlite)
