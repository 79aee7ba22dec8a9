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

from sqlalchemy import (
    ColumnElement,
    Numeric,
    and_,
    bindparam,
    case,
    cast,
    extract,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

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


_REFERRALS = Referral.__table__
_POINTS = ReferralMilestone.__table__


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


#: The intervals also given over every channel together (the contract's two medians).
OVERALL = ("request_to_accept", "request_to_door")


async def intervals(session: AsyncSession, ids: Sequence[int], period: Period
                    ) -> list[IntervalFigure]:
    """Every interval per channel, and request-to-accept and request-to-door over all channels,
    of the green-channel referrals sent from or to the institutions: one statement (each time
    point looked up once per referral, the medians by window functions)."""
    dialect = session.get_bind().dialect.name
    if dialect not in _STATEMENTS:
        _STATEMENTS[dialect] = _statement(dialect)
    rows = await session.execute(_STATEMENTS[dialect], {
        "start": period.start, "end": period.end, "ids": list(ids)})
    found = {(row[0], row[1]): (int(row[2]), row[3], int(row[4] or 0)) for row in rows}
    out: list[IntervalFigure] = []
    for name, (_, _, targets) in NAMED.items():
        for channel in sorted(targets):
            if (name, channel) in found:
                count, median_s, met = found[(name, channel)]
                goal = targets[channel]
                out.append(IntervalFigure(name, channel, count, minutes(median_s), goal,
                                          None if goal is None else met))
        if (name, "*") in found:
            count, median_s, _ = found[(name, "*")]
            out.append(IntervalFigure(name, None, count, minutes(median_s), None, None))
    return out


#: The statement per dialect, built once (building it costs more than running it).
_STATEMENTS: dict[str, Any] = {}


def _statement(dialect: str) -> Any:
    """(interval, channel or "*", count, median seconds, how many met the target), for
    referrals requested in [:start, :end) sent from or to one of :ids."""
    r = _REFERRALS.c
    used = sorted({p for start, end, _ in NAMED.values() for p in (start, end)})
    # Set-based rather than a subquery per point and referral: the green referrals of the
    # scope, their recorded rows that no row corrects, the newest such row per point, then one
    # row per referral with a column per point (the referral's column where none was recorded).
    refs = (select(r.id, r.green_channel.label("channel"),
                   *[r[c] for c in sorted(set(TRANSITION_POINTS.values()))])
            .where(r.green_channel.is_not(None),
                   r.requested_at >= bindparam("start", type_=r.requested_at.type),
                   r.requested_at < bindparam("end", type_=r.requested_at.type),
                   or_(r.from_institution_id.in_(bindparam("ids", expanding=True)),
                       r.to_institution_id.in_(bindparam("ids", expanding=True))))
            .cte("refs"))
    m = _POINTS.alias("m")
    later = _POINTS.alias("later")
    valid = (select(m.c.id, m.c.referral_id, m.c.milestone, m.c.at)
             .join_from(m, refs, refs.c.id == m.c.referral_id)
             .where(m.c.milestone.in_(used),
                    ~select(later.c.id).where(later.c.referral_id == m.c.referral_id,
                                              later.c.corrects_id == m.c.id).exists())
             .cte("valid"))
    newest = (select(func.max(valid.c.id).label("id"))
              .group_by(valid.c.referral_id, valid.c.milestone).subquery())
    pivot = (select(valid.c.referral_id,
                    *[func.max(case((valid.c.milestone == p, valid.c.at), else_=None)
                               ).label(f"r_{p}") for p in used])
             .join_from(valid, newest, newest.c.id == valid.c.id)
             .group_by(valid.c.referral_id).subquery())

    def value(p: str) -> Any:
        column = TRANSITION_POINTS.get(p)
        recorded = pivot.c[f"r_{p}"]
        return recorded if column is None else func.coalesce(recorded, refs.c[column])

    points = (select(refs.c.channel, *[value(p).label(f"p_{p}") for p in used])
              .join_from(refs, pivot, pivot.c.referral_id == refs.c.id, isouter=True)
              .cte("points"))
    parts = []
    for name, (start, end, targets) in NAMED.items():
        seconds = _seconds(dialect, points.c[f"p_{start}"], points.c[f"p_{end}"])
        parts.append(select(literal(name).label("name"), points.c.channel, seconds.label("s"))
                     .where(points.c.channel.in_(list(targets))))
        if name in OVERALL:
            parts.append(select(literal(name).label("name"), literal("*").label("channel"),
                                seconds.label("s")))
    timed = union_all(*parts).cte("timed")
    key = [timed.c.name, timed.c.channel]
    ranked = select(timed.c.name, timed.c.channel, timed.c.s,
                    func.row_number().over(partition_by=key, order_by=timed.c.s).label("rn"),
                    func.count().over(partition_by=key).label("n")
                    ).where(timed.c.s.is_not(None)).subquery()
    middle = ranked.c.rn.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2])
    target = case(*[(and_(ranked.c.name == name, ranked.c.channel == channel), t * 60)
                    for name, (_, _, targets) in NAMED.items()
                    for channel, t in targets.items() if t is not None], else_=None)
    return (select(ranked.c.name, ranked.c.channel, func.max(ranked.c.n),
                   func.avg(case((middle, ranked.c.s), else_=None)),
                   func.sum(case((ranked.c.s <= target, 1), else_=0)))
            .group_by(ranked.c.name, ranked.c.channel))
