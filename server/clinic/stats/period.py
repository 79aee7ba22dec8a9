"""The period of a statistics request and its months, in Beijing time (pure: no database).

China keeps one fixed offset, +08:00, with no daylight saving, so a month of Asia/Shanghai is
``[YYYY-MM-01T00:00+08:00, next month)``: a consultation at 23:30 Beijing time on the last day
of a month belongs to that month even though it is the afternoon of that day in UTC.

``from`` is inclusive and ``to`` exclusive. Either is a date (``2026-03-01``: Beijing midnight)
or a date-time with an offset; a date given as ``to`` includes that whole day
(``from=2026-03-01&to=2026-03-31`` is March).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
#: The longest period one request may cover (its months are the breakdown's rows).
MAX_MONTHS = 120
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
                       r"(Z|[+-][0-9]{2}:[0-9]{2})", re.ASCII)
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])", re.ASCII)
YEARS = (2000, 2200)


class PeriodError(ValueError):
    """A bound or month that cannot be read; ``field`` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_bound(field: str, raw: str, *, upper: bool) -> datetime:
    """A ``from`` or ``to`` value as an aware UTC datetime (see the module's rules)."""
    try:
        if _DATE.fullmatch(raw):
            day = date.fromisoformat(raw)
            _check_year(field, day.year)
            start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
            return (start + timedelta(days=1) if upper else start).astimezone(UTC)
        if _DATETIME.fullmatch(raw):
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            _check_year(field, value.year)
            return value.astimezone(UTC)
    except ValueError as exc:
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError(field, f"{field} is not a valid date: {raw[:40]!r}") from None
    raise PeriodError(field, f"{field} must be a date (2026-03-01) or a date-time with an "
                             f"offset (2026-03-01T00:00:00+08:00), not {raw[:40]!r}")


def _check_year(field: str, year: int) -> None:
    if not YEARS[0] <= year <= YEARS[1]:
        raise PeriodError(field, f"{field} must lie in the years {YEARS[0]}-{YEARS[1]}")


def month_start(year: int, month: int) -> datetime:
    """The first instant of a Beijing month, in UTC."""
    return datetime(year, month, 1, tzinfo=SHANGHAI).astimezone(UTC)


def _next(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def parse_month(field: str, raw: str) -> str:
    """A ``YYYY-MM`` month label, checked."""
    if not _MONTH.fullmatch(raw):
        raise PeriodError(field, f"{field} must be a month written YYYY-MM, not {raw[:40]!r}")
    _check_year(field, int(raw[:4]))
    return raw


def month_label(at: datetime) -> str:
    """``YYYY-MM`` of the Beijing month holding ``at``."""
    return at.astimezone(SHANGHAI).strftime("%Y-%m")


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC and the Beijing months it touches."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise PeriodError("to", "to must be later than from")
        if len(self.months) > MAX_MONTHS:
            raise PeriodError("to", f"a period covers at most {MAX_MONTHS} months")

    @property
    def months(self) -> list[str]:
        """Every Beijing month the period touches, in order."""
        local = self.start.astimezone(SHANGHAI)
        year, month = local.year, local.month
        out: list[str] = []
        while month_start(year, month) < self.end and len(out) <= MAX_MONTHS:
            out.append(f"{year:04d}-{month:02d}")
            year, month = _next(year, month)
        return out

    def boundaries(self) -> list[datetime]:
        """The starts of the second and later months: where a row moves to the next month."""
        return [month_start(int(m[:4]), int(m[5:])) for m in self.months[1:]]

    def whole_months(self) -> list[str]:
        """The months whose first instant lies in the period: those whose visit totals count
        (a month's total cannot be split by day)."""
        return [m for m in self.months
                if self.start <= month_start(int(m[:4]), int(m[5:])) < self.end]


def default_period(now: datetime) -> Period:
    """The current Beijing month."""
    local = now.astimezone(SHANGHAI)
    return Period(month_start(local.year, local.month),
                  month_start(*_next(local.year, local.month)))


def make_period(raw_from: str | None, raw_to: str | None, now: datetime) -> Period:
    """The period a request asks for; missing bounds default to the current month's."""
    default = default_period(now)
    start = parse_bound("from", raw_from, upper=False) if raw_from else default.start
    end = parse_bound("to", raw_to, upper=True) if raw_to else default.end
    if raw_from and not raw_to and end <= start:
        local = start.astimezone(SHANGHAI)
        end = month_start(*_next(local.year, local.month))
    return Period(start, end)
