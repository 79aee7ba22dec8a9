"""The clinical clock of a referral, as pure arithmetic: the current value of each time point
and the intervals of its channel (``workflow.INTERVALS``) against their targets.

A time point's value is its newest recorded row that no later row corrects; the transition
points (request, accept, departure, door, and onset) fall back to the referral's columns, so a
referral recorded before the milestone rows existed still has a clock. Nothing here touches
the database or the clock of the machine: ``now`` is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from yilian.server.clinic.referrals.workflow import INTERVALS, MILESTONES, TRANSITION_POINTS

#: The time points of an ordinary referral (no green channel): the workflow's own.
ORDINARY_POINTS = ("request", "accept", "departure", "door")


@dataclass(frozen=True)
class PointRow:
    """One recorded time point (a ``referral_milestones`` row, reduced to what counts)."""

    id: int
    milestone: str
    at: datetime
    corrects_id: int | None = None


@dataclass(frozen=True)
class Interval:
    start: str
    end: str
    minutes: float | None
    target_minutes: int | None
    done: bool
    met: bool | None


def points_of(channel: str | None) -> tuple[str, ...]:
    """The time points a referral of this channel keeps, in clinical order."""
    return MILESTONES[channel] if channel else ORDINARY_POINTS


def superseded_ids(rows: Iterable[PointRow]) -> set[int]:
    """Ids of the rows a later row corrects."""
    return {r.corrects_id for r in rows if r.corrects_id is not None}


def current_rows(rows: Iterable[PointRow]) -> dict[str, PointRow]:
    """time point -> the row holding its value: the newest row no other row corrects."""
    rows = list(rows)
    gone = superseded_ids(rows)
    out: dict[str, PointRow] = {}
    for r in sorted(rows, key=lambda r: r.id):
        if r.id not in gone:
            out[r.milestone] = r
    return out


def current_points(rows: Iterable[PointRow], columns: Mapping[str, datetime | None]
                   ) -> dict[str, datetime]:
    """time point -> its value. ``columns`` maps the referral's column names
    (``workflow.TRANSITION_POINTS`` values) to their values, the fallback of those points."""
    points = {name: r.at for name, r in current_rows(rows).items()}
    for point, column in TRANSITION_POINTS.items():
        value = columns.get(column)
        if point not in points and value is not None:
            points[point] = value
    return points


def minutes_between(start: datetime, end: datetime) -> float:
    """Elapsed minutes with one decimal, halves rounded away from zero (19 min 57 s is 20.0;
    negative if ``end`` was recorded before ``start``)."""
    seconds = Decimal((end - start) // timedelta(microseconds=1)) / 1_000_000
    return float((seconds / 60).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _within(start: datetime, end: datetime, target: int) -> bool:
    # On the exact time, not the rounded minutes: 60 min 2 s is past a 60-minute target.
    return end - start <= timedelta(minutes=target)


def interval(start: str, end: str, target: int | None, points: Mapping[str, datetime],
             now: datetime | None) -> Interval:
    """One interval. Started but not ended, it runs to ``now`` (``met`` turns false once past
    its target and stays null before); with ``now`` None (a closed referral) it does not run."""
    t0, t1 = points.get(start), points.get(end)
    if t0 is None:
        return Interval(start, end, None, target, False, None)
    if t1 is not None:
        return Interval(start, end, minutes_between(t0, t1), target, True,
                        None if target is None else _within(t0, t1, target))
    if now is None:
        return Interval(start, end, None, target, False, None)
    return Interval(start, end, minutes_between(t0, now), target, False,
                    False if target is not None and not _within(t0, now, target) else None)


def intervals(channel: str | None, points: Mapping[str, datetime], now: datetime | None
              ) -> dict[str, Interval]:
    """name -> interval, for every interval of the channel, in display order."""
    return {name: interval(start, end, target, points, now)
            for name, start, end, target in INTERVALS[channel or ""]}
