"""UTCDateTime's fused conversions store the same text and read back the same values as the
generic path (its process_bind_param/process_result_value around the driver's own type), on
SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, select, text
from sqlalchemy.dialects import postgresql, sqlite

from yilian.server.core.db import Database, UTCDateTime
from yilian.server.core.settings import Settings

SHANGHAI = timezone(timedelta(hours=8))
VALUES = [
    datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    datetime(2026, 12, 1, 17, 30, 0, 123456, tzinfo=SHANGHAI),  # stored as 09:30:00.123456
    datetime(1999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
]


def _generic(dialect: object) -> tuple[object, object]:
    """The conversions TypeDecorator would compose without the fused ones."""
    col = UTCDateTime()
    impl = col.load_dialect_impl(dialect).dialect_impl(dialect)  # type: ignore[arg-type]
    bind, result = impl.bind_processor(dialect), impl.result_processor(dialect, None)

    def to_db(v: datetime | None) -> object:
        v2 = col.process_bind_param(v, dialect)  # type: ignore[arg-type]
        return bind(v2) if bind is not None else v2

    def from_db(v: object) -> object:
        return col.process_result_value(result(v) if result is not None else v,  # type: ignore[arg-type]
                                        dialect)  # type: ignore[arg-type]
    return to_db, from_db


def test_the_sqlite_conversions_match_the_generic_ones() -> None:
    dialect = sqlite.dialect()
    fused_bind = UTCDateTime().bind_processor(dialect)
    fused_result = UTCDateTime().result_processor(dialect, None)
    assert fused_bind is not None and fused_result is not None
    to_db, from_db = _generic(dialect)
    for v in VALUES:
        stored = fused_bind(v)
        assert stored == to_db(v), v
        assert fused_result(stored) == from_db(stored) == v
        assert fused_result(stored).tzinfo is UTC
    assert fused_bind(None) is None and fused_result(None) is None
    # Text written by something else: SQLite's CURRENT_TIMESTAMP, an offset of its own.
    assert fused_result("2026-12-01 09:30:00") == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert fused_result("2026-12-01T17:30:00+08:00") == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive datetime"):
        fused_bind(datetime(2026, 12, 1, 9, 30))


def test_the_postgresql_result_conversion_keeps_utc_and_converts_the_rest() -> None:
    fused = UTCDateTime().result_processor(postgresql.dialect(), None)
    assert fused is not None
    for v in VALUES:
        assert fused(v) == v and fused(v).tzinfo is UTC
    assert fused(datetime(2026, 12, 1, 9, 30)) == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert fused(None) is None


async def test_values_round_trip_through_the_database(settings: Settings) -> None:
    table = Table("utc_roundtrip", MetaData(), Column("id", Integer, primary_key=True),
                  Column("at", UTCDateTime()), Column("plain", DateTime()))
    db = Database(settings.resolved_database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(table.create)
            await conn.execute(table.insert(), [{"id": i, "at": v} for i, v in enumerate(VALUES)])
            # Ranges compare the stored values (text on SQLite): the order must be the times'.
            after = datetime(2026, 1, 1, tzinfo=UTC)
            got = (await conn.execute(select(table.c.id).where(table.c.at > after)
                                      .order_by(table.c.at))).scalars().all()
            assert got == [3, 0, 1]
            rows = (await conn.execute(select(table.c.at).order_by(table.c.id))).scalars().all()
            assert rows == VALUES and all(r.tzinfo is UTC for r in rows)
            if db.is_sqlite:
                stored = (await conn.execute(text("SELECT at FROM utc_roundtrip WHERE id = 1"))
                          ).scalar_one()
                assert stored == "2026-12-01 09:30:00.123456"
            await conn.run_sync(table.drop)
    finally:
        await db.close()
