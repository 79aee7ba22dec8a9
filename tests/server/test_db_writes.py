"""core.writes and Database.write_fused: the writes of one change stand or fall together (on
PostgreSQL as one statement, without a transaction when it has one guard), a guard that misses
writes nothing, and a change that finds its rows changed runs again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, event, func, select, update
from sqlalchemy.orm import Session

from yilian.server.core.db import Database, utcnow
from yilian.server.core.models import AuditEntry
from yilian.server.core.settings import Settings
from yilian.server.core.writes import CHANGED_RETRIES, Changed, NotApplied, Writes

_AUDIT = cast(Table, AuditEntry.__table__)
#: A guard: the row ``b_id`` goes from action ``b_from`` to ``b_to`` (else no row).
_MOVE = (update(_AUDIT).where(_AUDIT.c.id == bindparam("b_id"),
                              _AUDIT.c.action == bindparam("b_from"))
         .values(action=bindparam("b_to")).returning(_AUDIT.c.id, _AUDIT.c.resource_type))
#: A write: the row ``b_id`` gets the address ``b_ip``.
_NOTE = update(_AUDIT).where(_AUDIT.c.id == bindparam("b_id")).values(ip=bindparam("b_ip"))


def _row(action: str) -> dict[str, Any]:
    return {"user_id": None, "institution_id": None, "action": action, "resource_type": "test",
            "resource_id": None, "ip": None, "detail": None, "at": utcnow()}


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.resolved_database_url)
    database.audit_sink = lambda entries: None  # as in the app: audit rows are not ours here
    try:
        yield database
    finally:
        await database.close()


async def _actions(db: Database, prefix: str) -> list[str]:
    async with db.read() as session:
        rows = await session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like(f"{prefix}%")).order_by(AuditEntry.id))
        return list(rows)


async def _seed(db: Database, action: str) -> int:
    def seed(session: Session) -> int:
        entry = AuditEntry(**{k: v for k, v in _row(action).items() if k != "at"})
        session.add(entry)
        session.flush()
        return entry.id
    return await db.write_sync(seed)


@pytest.mark.parametrize("fused", [True, False], ids=["write_fused", "write_sync"])
async def test_the_writes_stand_or_fall_with_their_guard(db: Database, fused: bool) -> None:
    prefix = f"wr-{fused}-"
    target, other = await _seed(db, prefix + "free"), await _seed(db, prefix + "other")
    write = db.write_fused if fused else db.write_sync

    def change(session: Session) -> tuple[list[tuple[Any, ...]], list[int]]:
        keys: list[int] = []
        writes = Writes()
        writes.guard(_MOVE, {"b_id": target, "b_from": prefix + "free", "b_to": prefix + "taken"})
        writes.insert(_AUDIT, _row(prefix + "first"), on_key=keys.append)
        writes.insert(_AUDIT, _row(prefix + "second"))
        writes.insert(_AUDIT, _row(prefix + "third"), on_key=keys.append)
        writes.update(_NOTE, {"b_id": other, "b_ip": "10.0.0.1"})
        return writes.run(session.connection()), keys

    guards, keys = await write(change)
    assert guards == [(target, "test")]
    written = [prefix + "taken", prefix + "other", prefix + "first", prefix + "second",
               prefix + "third"]
    # (In one statement the database picks the order the rows are written in.)
    assert sorted(await _actions(db, prefix)) == sorted(written)
    async with db.read() as session:
        first, third = (await session.execute(select(AuditEntry.action).where(
            AuditEntry.id.in_(keys)).order_by(AuditEntry.action))).scalars()
        assert (first, third) == (prefix + "first", prefix + "third")
        assert await session.scalar(select(AuditEntry.ip).where(AuditEntry.id == other)) \
            == "10.0.0.1"

    # Again: the row is taken now, the guard misses, and nothing of the batch is written.
    with pytest.raises(NotApplied) as missed:
        await write(change)
    assert missed.value.index == 0
    assert sorted(await _actions(db, prefix)) == sorted(written)


async def test_a_fused_change_is_one_statement_on_postgresql(db: Database) -> None:
    target = await _seed(db, "one-free")
    ran: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        ran.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        def change(session: Session) -> None:
            writes = Writes()
            writes.guard(_MOVE, {"b_id": target, "b_from": "one-free", "b_to": "one-taken"})
            writes.insert(_AUDIT, _row("one-first"))
            writes.insert(_AUDIT, _row("one-second"), on_key=lambda key: None)
            writes.run(session.connection())
        await db.write_fused(change)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
    assert sorted(await _actions(db, "one-")) == ["one-first", "one-second", "one-taken"]
    if not db.is_sqlite:
        assert len(ran) == 1 and ran[0].startswith("WITH ")


async def test_two_guards_take_a_transaction(db: Database) -> None:
    first, second = await _seed(db, "two-a"), await _seed(db, "two-b")

    def change(session: Session) -> None:
        writes = Writes()
        writes.guard(_MOVE, {"b_id": first, "b_from": "two-a", "b_to": "two-a-done"})
        writes.guard(_MOVE, {"b_id": second, "b_from": "two-b", "b_to": "two-b-done"})
        writes.insert(_AUDIT, _row("two-new"))
        writes.run(session.connection())

    if not db.is_sqlite:
        # Without a transaction the first guard could stand when the second misses: refused.
        with pytest.raises(RuntimeError):
            await db.write_fused(change)
        assert await _actions(db, "two-") == ["two-a", "two-b"]
    await db.write_sync(change)
    assert await _actions(db, "two-") == ["two-a-done", "two-b-done", "two-new"]

    # The second guard misses: in a transaction the first one's update is undone with it.
    def again(session: Session) -> None:
        writes = Writes()
        writes.guard(_MOVE, {"b_id": first, "b_from": "two-a-done", "b_to": "two-a-twice"})
        writes.guard(_MOVE, {"b_id": second, "b_from": "two-b", "b_to": "two-b-twice"})
        writes.run(session.connection())

    with pytest.raises(NotApplied) as missed:
        await db.write_sync(again)
    assert missed.value.index == 1
    assert await _actions(db, "two-") == ["two-a-done", "two-b-done", "two-new"]


async def test_a_change_that_finds_its_rows_changed_runs_again(db: Database) -> None:
    calls: list[int] = []

    def flaky(session: Session) -> int:
        calls.append(1)
        if len(calls) < CHANGED_RETRIES:
            raise Changed()
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0) + 1

    assert await db.write_fused(flaky) >= 1 and len(calls) == CHANGED_RETRIES

    def always(session: Session) -> None:
        calls.append(1)
        raise Changed()

    calls.clear()
    with pytest.raises(Changed) as refused:
        await db.write_fused(always)
    assert len(calls) == CHANGED_RETRIES and refused.value.status == 409


async def test_writes_without_a_guard_or_a_key(db: Database) -> None:
    """Plain inserts (a request to a queue nobody serves: no slot, nobody to notify)."""

    def change(session: Session) -> list[tuple[Any, ...]]:
        writes = Writes()
        writes.insert(_AUDIT, _row("plain-a"))
        writes.insert(_AUDIT, _row("plain-b"))
        return writes.run(session.connection())

    assert await db.write_fused(change) == []
    assert sorted(await _actions(db, "plain-")) == ["plain-a", "plain-b"]
