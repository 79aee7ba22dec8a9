"""Green-channel intervals in SQL: the median minutes, how many were timed, and how many met
their target, per interval of ``referrals.workflow.INTERVALS`` and per channel.

A time point's value is what the referral's own clock shows (``referrals.clock``): the newest
recorded row of that point that no later row corrects, or, for the workflow's points
(request, accept, departure, door, onset), the referral's column when no row was recorded. A
median is that of the exact elapsed times (the middle one, or the mean of the middle two),
rounded to 0.1 minute; an interval meets its target on the exact time, as on the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, Numeric, and_, cast, extract, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from yilian.server.clinic.models import Referral, ReferralMilestone
from yilian.server.clinic.referrals.workflow import INTERVALS, TRANSITION_POINTS
from yilian.server.clinic.stats.period import Period

#: interval name -> (from point, to point, {channel: target minutes or None}), in the order
#: of the channels' tables.
NAMED: dict[str, tuple[str, str, dict[str, int | None]]] = {}
for _channel, _rows in INTERVALS.items():
    for _name, _start, _end, _target in _rows:
        if _channel:
            NAMED.setdefault(_name, (_start, _end, {}))[2][_channel] = _target


def _point(name: str) -> ColumnElement[Any]:
    """The current value of time point ``name`` of the outer referral row."""
    m = aliased(ReferralMilestone)
    later = aliased(ReferralMilestone)
    recorded = (select(m.at)
                .where(m.referral_id == Referral.id, m.milestone == name,
                       ~select(later.id).where(later.referral_id == m.referral_id,
                                               later.corrects_id == m.id).exists())
                .order_by(m.id.desc()).limit(1).scalar_subquery())
    column = TRANSITION_POINTS.get(name)
    if column is None:
        return recorded
    return func.coalesce(recorded, getattr(Referral, column))


def _seconds(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    """Elapsed seconds from ``start`` to ``end``, to the millisecond."""
    if dialect == "sqlite":  # UTC text; julianday keeps ~50 µs at today's dates
        return func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)
    return func.round(cast(extract("epoch", end - start), Numeric), 3)


@dataclass(frozen=True)
class IntervalFigure:
    name: str
    channel: str | None  # None: every channel together
    count: int
    median_min: float | None
    target_min: int | None
    met: int | None


def minutes(seconds: float | Decimal | None) -> float | None:
    """Seconds as minutes with one decimal, halves away from zero (as the clock shows them)."""
    if seconds is None:
        return None
    return float((Decimal(str(seconds)) / 60).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


async def intervals(session: AsyncSession, ids: Sequence[int], period: Period
                    ) -> list[IntervalFigure]:
    """Every interval, per channel, and request-to-accept and request-to-door over all
    channels, of the green-channel referrals sent from or to the institutions."""
    dialect = session.get_bind().dialect.name
    r = Referral
    scoped = and_(r.green_channel.is_not(None), r.requested_at >= period.start,
                  r.requested_at < period.end,
                  or_(r.from_institution_id.in_(ids), r.to_institution_id.in_(ids)))
    out: list[IntervalFigure] = []
    for name, (start, end, targets) in NAMED.items():
        timed = (select(r.green_channel.label("channel"),
                        _seconds(dialect, _point(start), _point(end)).label("s"))
                 .where(scoped, r.green_channel.in_(list(targets))).subquery())
        rows = select(timed.c.channel, timed.c.s).where(timed.c.s.is_not(None)).subquery()
        met = await _met(session, rows, targets)
        for channel, (count, median_s) in sorted((await _medians(session, rows, True)).items()):
            target = targets.get(channel)
            out.append(IntervalFigure(name, channel, count, minutes(median_s), target,
                                      None if target is None else met.get(channel, 0)))
        if name in OVERALL:
            for count, median_s in (await _medians(session, rows, False)).values():
                out.append(IntervalFigure(name, None, count, minutes(median_s), None, None))
    return out


#: The intervals also given over every channel together (the contract's two medians).
OVERALL = ("request_to_accept", "request_to_door")


async def _medians(session: AsyncSession, rows: Any, by_channel: bool
                   ) -> dict[str, tuple[int, Any]]:
    """channel (or "*") -> (how many, the median seconds), by window functions: the middle
    row, or the mean of the middle two."""
    channel = rows.c.channel if by_channel else literal("*")
    partition = [rows.c.channel] if by_channel else None
    ranked = select(channel.label("channel"), rows.c.s,
                    func.row_number().over(partition_by=partition, order_by=rows.c.s
                                           ).label("rn"),
                    func.count().over(partition_by=partition).label("n")).subquery()
    middle = ranked.c.rn.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2])
    stmt = (select(ranked.c.channel, func.max(ranked.c.n), func.avg(ranked.c.s))
            .where(middle).group_by(ranked.c.channel))
    return {row[0]: (int(row[1]), row[2]) for row in await session.execute(stmt)}


async def _met(session: AsyncSession, rows: Any, targets: dict[str, int | None]
               ) -> dict[str, int]:
    """channel -> how many timed intervals were within the channel's target."""
    wanted = [(c, t) for c, t in targets.items() if t is not None]
    if not wanted:
        return {}
    within = or_(*[and_(rows.c.channel == c, rows.c.s <= t * 60) for c, t in wanted])
    stmt = select(rows.c.channel, func.count()).where(within).group_by(rows.c.channel)
    return {row[0]: int(row[1]) for row in await session.execute(stmt)}
