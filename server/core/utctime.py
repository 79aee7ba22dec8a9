"""Times in UTC: ``utcnow`` and the column type that stores every time as UTC on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


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

    # The two methods above, fused with the driver's own conversion into one function per
    # value on SQLite and PostgreSQL: lists of slots, consultations and audit entries convert
    # thousands of values a second, and ``datetime.replace`` alone costs ~1.5 us on CPython
    # 3.11 (more than parsing the text). Same stored text, same values
    # (tests/server/test_utc_datetime.py).
    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_bind
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object
                         ) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_result
        if dialect.name == "postgresql":
            return _aware_result
        return super().result_processor(dialect, coltype)


def _sqlite_bind(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite text for the UTC time: ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return _SQLITE_FORMAT % (value.year, value.month, value.day, value.hour, value.minute,
                             value.second, value.microsecond)


#: What SQLAlchemy's SQLite DATETIME writes (an aware datetime's ``isoformat`` costs more).
_SQLITE_FORMAT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def _sqlite_result(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:  # what _sqlite_bind wrote (or SQLite's CURRENT_TIMESTAMP)
        return datetime.fromisoformat(value + "+00:00")
    except ValueError:  # text with an offset of its own
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _aware_result(value: datetime | None) -> datetime | None:
    """asyncpg's ``timestamptz`` values are already aware, in UTC."""
    if value is None or value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
