"""Monthly outpatient visit totals: entered or imported by a coordinator (or an admin) for
the institutions of their alliances, read with the same scope rules as the statistics.

A batch is all or nothing: every row is checked first (institution known and the caller's,
month ``YYYY-MM``, visits a whole number 0..100,000,000, no institution-month twice), every
bad row is listed in one 422, and only a clean batch is written (a month entered again
replaces its total).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.stats.models import OutpatientVisitTotal
from yilian.server.clinic.stats.period import PeriodError, parse_month
from yilian.server.clinic.stats.schemas import VisitTotalOut, VisitTotalsQuery
from yilian.server.clinic.stats.scope import _members, coordinator_alliances, resolve
from yilian.server.core import audit
from yilian.server.core.access import require_role
from yilian.server.core.db import one_at_a_time, utcnow
from yilian.server.core.errors import ValidationFailed
from yilian.server.core.models import Institution, User

MAX_ROWS = 5000
MAX_VISITS = 100_000_000
#: Errors listed in one answer (each names its row); the count of the rest is given.
MAX_LISTED = 1000


@dataclass(frozen=True)
class Total:
    institution_id: int
    month: str
    visits: int


class RowErrors:
    """The bad rows of a batch, collected before anything is written."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, row: int, column: str, msg: str) -> None:
        self.items.append({"loc": ["row", row, column], "msg": msg, "type": "value_error"})

    def raise_any(self, what: str) -> None:
        if not self.items:
            return
        details: dict[str, Any] = {"errors": self.items[:MAX_LISTED]}
        if len(self.items) > MAX_LISTED:
            details["more_errors"] = len(self.items) - MAX_LISTED
        rows = len({e["loc"][1] for e in self.items})
        raise ValidationFailed(f"{what}: {rows} bad row(s), nothing was saved", details=details)


async def writable_institutions(session: AsyncSession, user: User) -> set[int] | None:
    """The institutions whose totals ``user`` may enter (None: every one)."""
    require_role(user, ("coordinator", "admin"), "enter outpatient visit totals")
    if user.role == "admin":
        return None
    members = await _members(session, await coordinator_alliances(session, user))
    return set().union(*members.values()) if members else set()


async def check(session: AsyncSession, user: User, rows: Sequence[tuple[int, Any, Any, Any]],
                what: str, errors: RowErrors | None = None) -> list[Total]:
    """Rows of (row number, institution id, month, visits) as checked totals, or 422 listing
    every bad row (with those already in ``errors``)."""
    allowed = await writable_institutions(session, user)
    known = set((await session.execute(select(Institution.id))).scalars())
    errors = errors if errors is not None else RowErrors()
    seen: dict[tuple[int, str], int] = {}
    out: list[Total] = []
    for number, inst, month, visits in rows:
        ok = True
        if not isinstance(inst, int) or isinstance(inst, bool) or inst not in known:
            errors.add(number, "institution_id", f"no such institution: {inst!r}"[:120])
            ok = False
        elif allowed is not None and inst not in allowed:
            errors.add(number, "institution_id", f"institution {inst} is not in your alliances")
            ok = False
        try:
            parse_month("month", month if isinstance(month, str) else "")
        except PeriodError:
            errors.add(number, "month", f"month must be YYYY-MM, not {month!r}"[:120])
            ok = False
        if not isinstance(visits, int) or isinstance(visits, bool) or \
                not 0 <= visits <= MAX_VISITS:
            errors.add(number, "visits", f"visits must be a whole number 0-{MAX_VISITS}, "
                                         f"not {visits!r}"[:120])
            ok = False
        if ok:
            key = (inst, month)
            if key in seen:
                errors.add(number, "month", f"institution {inst}, {month} is also row "
                                            f"{seen[key]}")
                continue
            seen[key] = number
            out.append(Total(inst, month, visits))
    errors.raise_any(what)
    return out


#: Replaced totals listed with their earlier value in the audit entry of one save.
AUDIT_REPLACED = 5_000


async def save(session: AsyncSession, user: User, totals: Sequence[Total], ip: str | None,
               action: str) -> list[VisitTotalOut]:
    """Write checked totals in bulk (an entered month replaces its total); audited once."""
    t = OutpatientVisitTotal.__table__.c
    now = utcnow()
    await one_at_a_time(session, "visit-totals")  # which rows exist holds until commit
    existing: dict[tuple[int, str], int] = {}
    keys = [(x.institution_id, x.month) for x in totals]
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        rows = await session.execute(select(t.institution_id, t.month, t.visits).where(
            tuple_(t.institution_id, t.month).in_(chunk)))
        existing |= {(r[0], r[1]): r[2] for r in rows}
    new = [{"institution_id": x.institution_id, "month": x.month, "visits": x.visits,
            "updated_by_id": user.id, "updated_at": now}
           for x in totals if (x.institution_id, x.month) not in existing]
    changed = [{"b_inst": x.institution_id, "b_month": x.month, "visits": x.visits,
                "updated_by_id": user.id, "updated_at": now}
               for x in totals if (x.institution_id, x.month) in existing]
    if new:
        await session.execute(insert(OutpatientVisitTotal), new)
    if changed:
        # Core executemany on the session's connection (an ORM update with several parameter
        # sets would be taken for an update by primary key).
        table = OutpatientVisitTotal.__table__
        assert isinstance(table, Table)
        await (await session.connection()).execute(
            update(table)
            .where(t.institution_id == bindparam("b_inst"), t.month == bindparam("b_month"))
            .values(visits=bindparam("visits"), updated_by_id=bindparam("updated_by_id"),
                    updated_at=bindparam("updated_at")),
            changed)
    audit.record(session, user, action, "outpatient_visit_totals", ip=ip, detail={
        "rows": len(totals), "inserted": len(new), "replaced": len(changed),
        "institutions": sorted({x.institution_id for x in totals})[:200],
        # what a replaced total was, so the audit can tell who changed which figure from what
        "before": [{"institution_id": x.institution_id, "month": x.month,
                    "visits": existing[(x.institution_id, x.month)], "now": x.visits}
                   for x in totals if (x.institution_id, x.month) in existing
                   and existing[(x.institution_id, x.month)] != x.visits][:AUDIT_REPLACED]})
    return [VisitTotalOut(institution_id=x.institution_id, month=x.month, visits=x.visits,
                          updated_by_id=user.id, updated_at=now) for x in totals]


async def listing(session: AsyncSession, user: User, query: VisitTotalsQuery,
                  ip: str | None) -> list[VisitTotalOut]:
    """The entered totals of a scope (as the statistics: coordinators their alliances,
    doctors their institution), by month then institution."""
    scope = await resolve(session, user, query.alliance_id, query.institution_id, False)
    if query.from_month and query.to_month and query.from_month > query.to_month:
        raise ValidationFailed("from_month is after to_month", details={"errors": [
            {"loc": ["query", "to_month"], "msg": "before from_month", "type": "value_error"}]})
    t = OutpatientVisitTotal
    stmt = select(t).where(t.institution_id.in_(scope.ids))
    if query.from_month:
        stmt = stmt.where(t.month >= query.from_month)
    if query.to_month:
        stmt = stmt.where(t.month <= query.to_month)
    rows = (await session.execute(stmt.order_by(t.month, t.institution_id).limit(20_000))
            ).scalars()
    out = [VisitTotalOut(institution_id=r.institution_id, month=r.month, visits=r.visits,
                         updated_by_id=r.updated_by_id, updated_at=r.updated_at) for r in rows]
    audit.record(session, user, "read_visit_totals", "outpatient_visit_totals", ip=ip,
                 detail={"alliance_id": query.alliance_id,
                         "institution_id": query.institution_id, "rows": len(out)})
    return out
