"""``GET /api/stats``: check the scope, read each source's grouped rows, add them up, audit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.stats import figures, green, queries
from yilian.server.clinic.stats.period import Period, PeriodError, make_period
from yilian.server.clinic.stats.schemas import StatsOut, StatsQuery
from yilian.server.clinic.stats.scope import Scope, resolve
from yilian.server.core import audit
from yilian.server.core.db import Database
from yilian.server.core.errors import ValidationFailed
from yilian.server.core.models import User


def period_of(query: StatsQuery, now: datetime) -> Period:
    """The period asked for; a bad bound is 422 naming the parameter."""
    try:
        return make_period(query.from_, query.to, now)
    except PeriodError as exc:
        raise ValidationFailed(str(exc), details={"errors": [
            {"loc": ["query", exc.field], "msg": str(exc), "type": "value_error"}]}) from None


async def compute(db: Database, scope: Scope, period: Period, now: datetime
                  ) -> dict[str, Any]:
    """Every figure of the scope in the period (no audit: see ``read``).

    The seven sources are read at once, each on its own read session (on SQLite each
    connection has its own thread, and the sqlite3 module lets go of the interpreter while a
    query runs): the answer takes as long as the slowest source rather than their sum. Each
    source is one consistent read; they may differ by the few milliseconds between them."""
    ids = scope.ids

    async def read_one(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        async with db.read() as session:
            return await fn(session, ids, *args)

    if ids:
        rows = await asyncio.gather(
            read_one(queries.consultations_requested, period),
            read_one(queries.consultations_received, period),
            read_one(queries.referrals, period),
            read_one(green.intervals, period),
            read_one(queries.teaching_sessions, period),
            read_one(queries.person_times, period, now),
            read_one(queries.visit_totals, period.whole_months()))
    else:
        rows = [[], [], [], [], [], [], []]
    body = figures.build(scope.places, period.months, period.whole_months(), *rows)
    return {"scope": {"alliance_id": scope.alliance_id, "institution_id": scope.institution_id,
                      "include_below": scope.include_below, "institution_ids": ids},
            "period": {"from": period.start, "to": period.end, "months": period.months},
            **body}


async def read(session: AsyncSession, db: Database, user: User, query: StatsQuery,
               now: datetime, ip: str | None, fmt: str = "json") -> StatsOut:
    """The figures ``user`` asked for, checked and audited (one ``read_stats`` entry naming
    the scope, the period and the format; the figures name no patient)."""
    period = period_of(query, now)
    scope = await resolve(session, user, query.alliance_id, query.institution_id,
                          query.include_below)
    result = StatsOut.model_validate(await compute(db, scope, period, now))
    audit.record(session, user, "read_stats", "stats", query.alliance_id or
                 query.institution_id, ip=ip, detail={
                     "alliance_id": query.alliance_id, "institution_id": query.institution_id,
                     "include_below": query.include_below, "from": period.start.isoformat(),
                     "to": period.end.isoformat(), "format": fmt,
                     "institutions": len(scope.ids)})
    return result
