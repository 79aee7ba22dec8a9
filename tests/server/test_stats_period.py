"""The statistics' period and months in Beijing time (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from yilian.server.clinic.stats.period import (
    Period,
    PeriodError,
    make_period,
    month_label,
    parse_bound,
)

NOW = datetime(2026, 3, 15, 4, 0, tzinfo=UTC)


def test_a_date_is_beijing_midnight_and_a_date_to_includes_its_day() -> None:
    p = make_period("2026-01-01", "2026-01-31", NOW)
    assert p.start == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    assert p.end == datetime(2026, 1, 31, 16, 0, tzinfo=UTC)
    assert p.months == ["2026-01"] and p.whole_months() == ["2026-01"]


def test_the_last_evening_of_a_month_is_that_month() -> None:
    assert month_label(datetime(2026, 1, 31, 15, 30, tzinfo=UTC)) == "2026-01"  # 23:30 BJ
    assert month_label(datetime(2026, 1, 31, 16, 10, tzinfo=UTC)) == "2026-02"  # 00:10 BJ


def test_defaults_and_partial_months() -> None:
    p = make_period(None, None, NOW)
    assert p.months == ["2026-03"]
    p = make_period("2026-02-15", "2026-04-10", NOW)
    assert p.months == ["2026-02", "2026-03", "2026-04"]
    assert p.whole_months() == ["2026-03", "2026-04"]
    assert [b.isoformat() for b in p.boundaries()] == ["2026-02-28T16:00:00+00:00",
                                                       "2026-03-31T16:00:00+00:00"]
    assert make_period("2026-05-01", None, NOW).months == ["2026-05"]
    assert parse_bound("from", "2026-03-01T00:00:00Z", upper=False) == \
        datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(("raw_from", "raw_to", "field"), [
    ("2026-13-01", None, "from"), ("2026-02-30", None, "from"), ("tomorrow", None, "from"),
    ("2026-03-01T10:00", None, "from"), ("1999-12-31", None, "from"),
    ("2026-03-01", "2026-02-01", "to"), ("2010-01-01", "2026-01-01", "to"),
])
def test_bad_bounds(raw_from: str, raw_to: str | None, field: str) -> None:
    with pytest.raises(PeriodError) as err:
        make_period(raw_from, raw_to, NOW)
    assert err.value.field == field


def test_an_empty_period_is_refused() -> None:
    with pytest.raises(PeriodError):
        Period(NOW, NOW)
