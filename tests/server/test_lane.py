"""core.lane: the Core SELECTs of Database.read_sync and write_fused, run on the driver itself
(asyncpg on PostgreSQL, pysqlite on SQLite), read exactly as through SQLAlchemy; anything else
still takes SQLAlchemy; a lost or cancelled connection is never handed out again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, event, func, literal, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from yilian.server.clinic.models import Slot
from yilian.server.core.db import Database
from yilian.server.core.models import AuditEntry, User
from yilian.server.core.settings import Settings
from yilian.server.core.writes import Writes

_SLOTS = cast(Table, Slot.__table__)
_USERS = cast(Table, User.__table__)
#: Labels, a join, a literal parameter, UTC datetimes, a JSON column and an expression.
_EXPERT_SLOTS = (
    select(_SLOTS.c.id, _SLOTS.c.start, _SLOTS.c.end.label("ends"), _USERS.c.display_name,
           _USERS.c.specialties, (_SLOTS.c.id + 1).label("next_id"),
           literal("free").label("word"))
    .join(_USERS, _USERS.c.id == _SLOTS.c.expert_id)
    .where(_SLOTS.c.expert_id == bindparam("expert"), _SLOTS.c.status == "free")
    .order_by(_SLOTS.c.start).limit(5))
_SOME_EXPERT = select(func.min(_SLOTS.c.expert_id))
_SLEEP = select(func.pg_sleep(bindparam("seconds")))


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.resolved_database_url, pool_size=3)
    database.audit_sink = lambda entries: None  # as in the app
    try:
        yield database
    finally:
        await database.close()


def _lane_rows(session: Session, stmt: Any, params: dict[str, Any]) -> list[Any]:
    return list(session.connection().execute(stmt, params).all())


async def test_a_select_reads_as_through_sqlalchemy(db: Database) -> None:
    expert = await db.read_sync(lambda s: s.connection().scalar(_SOME_EXPERT))
    assert expert is not None
    laned = await db.read_sync(lambda s: _lane_rows(s, _EXPERT_SLOTS, {"expert": expert}))
    async with db.read() as session:  # SQLAlchemy's own path
        plain = (await session.execute(_EXPERT_SLOTS, {"expert": expert})).all()
    assert len(laned) == len(plain) == 5
    assert [tuple(r) for r in laned] == [tuple(r) for r in plain]
    first = laned[0]
    assert first.start.tzinfo == UTC and first.ends > first.start
    assert first.next_id == first.id + 1 and first.word == "free"
    assert isinstance(first.specialties, list)
    assert first._mapping["display_name"] == plain[0].display_name
    with pytest.raises(AttributeError):
        _ = first.nothing_of_the_kind
    ids = await db.read_sync(
        lambda s: list(s.connection().execute(_EXPERT_SLOTS, {"expert": expert}).scalars()))
    assert ids == [r.id for r in plain]


async def test_other_statements_take_sqlalchemy(db: Database) -> None:
    """Expanding parameters, text and ORM statements run as before, on the same session."""
    expanding = select(_USERS.c.id).where(_USERS.c.id.in_(bindparam("ids", expanding=True)))

    def read(session: Session) -> tuple[list[int], int, int]:
        conn = session.connection()
        some = sorted(conn.execute(expanding, {"ids": [1, 2, 3]}).scalars())
        return (some, conn.execute(text("SELECT 41 + 1")).scalar_one(),
                len(session.scalars(select(User)).all()))

    some, answer, users = await db.read_sync(read)
    assert some == [1, 2, 3] and answer == 42 and users > 3


async def test_statements_are_heard_as_through_sqlalchemy(db: Database) -> None:
    """before_cursor_execute listeners (bench/sqlcount, the statement counts) hear each one."""
    heard: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        heard.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        await db.read_sync(lambda s: s.connection().scalar(_SOME_EXPERT))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
    if not db.is_sqlite:  # SQLite's reads run on engines of their own
        assert len(heard) == 1 and heard[0].startswith("SELECT min(")


async def test_a_constraint_is_an_integrity_error(db: Database) -> None:
    """A batch that breaks a key answers as SQLAlchemy would (the API's 409)."""
    audit = cast(Table, AuditEntry.__table__)

    def duplicate(session: Session) -> None:
        writes = Writes()
        row = {"id": 1, "user_id": None, "institution_id": None, "action": "dup",
               "resource_type": "test", "resource_id": None, "ip": None, "detail": None}
        writes.insert(audit, row)
        writes.insert(audit, row)
        writes.run(session.connection())

    with pytest.raises(IntegrityError):
        await db.write_fused(duplicate)
    assert await db.read_sync(lambda s: s.connection().scalar(_SOME_EXPERT)) is not None


def _backends(session: Session) -> list[int]:
    return list(session.execute(text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()")).scalars())


async def test_a_lost_connection_fails_once_then_the_lane_reconnects(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's connections")
    # Three lane connections open and idle, then the server drops every connection.
    await asyncio.gather(*(db.read_sync(lambda s: s.connection().scalar(
        _SLEEP, {"seconds": 0.05})) for _ in range(3)))
    async with db.engine.connect() as conn:
        for pid in await conn.run_sync(lambda c: _backends(Session(c))):
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(DBAPIError) as lost:
        await db.read_sync(lambda s: s.connection().scalar(_SOME_EXPERT))
    assert lost.value.connection_invalidated  # the API's 503 database_unavailable
    # The others, opened before the failure, are closed too: the next read connects afresh.
    assert await db.read_sync(lambda s: s.connection().scalar(_SOME_EXPERT)) is not None


async def test_a_cancelled_statement_is_not_handed_out_again(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's connections")
    slow = asyncio.ensure_future(db.read_sync(
        lambda s: s.connection().scalar(_SLEEP, {"seconds": 30})))
    await asyncio.sleep(0.3)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    # Size 3, and never more open: each next read has a connection that is not mid-statement.
    for _ in range(6):
        async with asyncio.timeout(5):
            assert await db.read_sync(lambda s: s.connection().scalar(_SOME_EXPERT)) is not None


async def test_the_lane_keeps_to_its_size(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's connections")
    sleeps = asyncio.gather(*(db.read_sync(lambda s: s.connection().scalar(
        _SLEEP, {"seconds": 0.4})) for _ in range(10)))
    await asyncio.sleep(0.2)
    async with db.engine.connect() as conn:
        running = (await conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND query LIKE 'SELECT pg_sleep(%'"))).scalar_one()
    await sleeps
    assert running == 3  # pool_size=3: the other seven wait for one of them


async def test_a_refused_parameter_leaves_the_connection_in_use(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("asyncpg's own parameter checks")
    with pytest.raises(DBAPIError) as refused:
        await db.read_sync(lambda s: _lane_rows(s, _EXPERT_SLOTS, {"expert": "not a number"}))
    assert not refused.value.connection_invalidated  # a 500, not "database unavailable"
    for _ in range(4):  # pool_size=3: the connection that refused it serves again
        assert await db.read_sync(lambda s: s.connection().scalar(_SOME_EXPERT)) is not None
