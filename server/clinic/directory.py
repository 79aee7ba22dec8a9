"""The alliance as doctors browse it: institutions, alliances, and experts with their next
free slots (experts of the caller's own alliances first)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import ARRAY, JSON, Integer, any_, bindparam, column, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased, selectinload

from yilian.server.clinic.models import Slot
from yilian.server.clinic.schemas import (
    AllianceOut,
    DepartmentOut,
    ExpertsQuery,
    InstitutionOut,
    InstitutionsQuery,
)
from yilian.server.core.api import JsonRows
from yilian.server.core.db import utcnow
from yilian.server.core.freshness import watch
from yilian.server.core.models import Alliance, AllianceMember, Department, Institution, User

NEXT_SLOTS = 3


async def institutions(session: AsyncSession, q: InstitutionsQuery) -> list[InstitutionOut]:
    """Institutions, by level or alliance."""
    stmt = select(Institution).options(selectinload(Institution.departments)).order_by(
        Institution.id
    )
    if q.level:
        stmt = stmt.where(Institution.level == q.level)
    if q.alliance_id:
        stmt = stmt.join(AllianceMember, AllianceMember.institution_id == Institution.id).where(
            AllianceMember.alliance_id == q.alliance_id
        )
    rows = (await session.execute(stmt)).scalars().all()
    return [
        InstitutionOut(
            id=i.id, name=i.name, local_name=i.local_name, level=i.level,  # type: ignore[arg-type]
            parent_id=i.parent_id,
            departments=[DepartmentOut(id=d.id, name=d.name, specialty=d.specialty,
                                        head_id=d.head_id)
                         for d in i.departments],
        )
        for i in rows
    ]


async def alliances(session: AsyncSession) -> list[AllianceOut]:
    """Alliances and their members."""
    rows = (await session.execute(select(Alliance).order_by(Alliance.id))).scalars().all()
    return [
        AllianceOut(
            id=a.id, name=a.name, kind=a.kind, specialty=a.specialty,  # type: ignore[arg-type]
            lead_institution_id=a.lead_institution_id,
            member_ids=sorted(m.institution_id for m in a.members),
        )
        for a in rows
    ]


@dataclass(frozen=True)
class _Roster:
    """What an expert search reads besides slots: active specialists with their institution
    and department names (by id), and the institutions of each alliance."""

    experts: list[tuple[User, str, str | None]]
    members: dict[int, frozenset[int]]

    def partners(self, institution_id: int) -> set[int]:
        """Institutions sharing an alliance with this one (itself included)."""
        found = {institution_id}
        for members in self.members.values():
            if institution_id in members:
                found |= members
        return found


#: Users, institutions, departments and alliances change by administration only: the roster
#: is read once per change (this process's: ``core.freshness``), and at least every
#: ROSTER_TTL seconds (another process's).
ROSTER_TABLES = watch("users", "institutions", "departments", "alliances", "alliance_members")
ROSTER_TTL = 10.0
_rosters: dict[str, tuple[int, float, _Roster]] = {}

_EXPERTS = (
    select(User, Institution.name, Department.name)
    .join(Institution, Institution.id == User.institution_id)
    .outerjoin(Department, Department.id == User.department_id)
    .where(User.role == "specialist", User.active.is_(True))
    .order_by(User.id)
)


def _roster(session: Session) -> _Roster:
    key = str(session.get_bind().engine.url)
    generation, now = ROSTER_TABLES.value, time.monotonic()
    cached = _rosters.get(key)
    if cached is not None and cached[0] == generation and now - cached[1] < ROSTER_TTL:
        return cached[2]
    experts: list[tuple[User, str, str | None]] = [
        (u, inst, dept) for u, inst, dept in session.execute(_EXPERTS)]
    for u, _, _ in experts:
        session.expunge(u)  # kept beyond this session, read-only
    members: dict[int, set[int]] = {}
    for alliance_id, institution_id in session.execute(
            select(AllianceMember.alliance_id, AllianceMember.institution_id)):
        members.setdefault(alliance_id, set()).add(institution_id)
    roster = _Roster(experts, {a: frozenset(m) for a, m in members.items()})
    _rosters[key] = (generation, now, roster)
    return roster


def experts(session: Session, user: User, q: ExpertsQuery) -> JsonRows:
    """Active specialists with their next free slots; the caller's alliance partners first
    (``ExpertOut``'s fields, as plain rows)."""
    roster = _roster(session)
    in_alliance = roster.members.get(q.alliance_id, frozenset()) if q.alliance_id else None
    rows = [(u, inst, dept) for u, inst, dept in roster.experts
            if (not q.institution_id or u.institution_id == q.institution_id)
            and (in_alliance is None or u.institution_id in in_alliance)
            and (not q.specialty or q.specialty in (u.specialties or []))]
    partners = roster.partners(user.institution_id)
    free = _next_free_slots(session, [u.id for u, _, _ in rows])
    found = JsonRows(
        {"id": u.id, "display_name": u.display_name, "institution_id": u.institution_id,
         "institution_name": inst, "department": dept, "specialties": list(u.specialties or []),
         "title": u.title, "in_my_alliance": u.institution_id in partners,
         "next_free_slots": free.get(u.id, [])}
        for u, inst, dept in rows)
    found.sort(key=lambda e: not e["in_my_alliance"])
    return found


# Each expert's next few free slots in one statement, built once and run with parameters. On
# SQLite: per expert, a correlated LIMIT over the (expert, status, start) index. PostgreSQL
# would run that subquery once per slot row: there, the same LIMIT in a LATERAL join. The
# experts are one parameter (an array; on SQLite a JSON list), so one statement text serves
# any number of them (``core.lane`` runs it).
_LATER = aliased(Slot)
_NEXT = (select(_LATER.expert_id, _LATER.id, _LATER.start, _LATER.end)
         .where(_LATER.expert_id == User.id, _LATER.status == "free",
                _LATER.start > bindparam("now"))
         .order_by(_LATER.start).limit(NEXT_SLOTS))
_NEXT_IDS = _NEXT.with_only_columns(_LATER.id).correlate(User)
_NEXT_FREE = (select(Slot.expert_id, Slot.id, Slot.start, Slot.end).select_from(User)
              .join(Slot, Slot.id.in_(_NEXT_IDS))
              .where(User.id.in_(select(column("value")).select_from(
                  func.json_each(bindparam("expert_ids", type_=JSON)))))
              .order_by(Slot.expert_id, Slot.start))
_LATERAL = _NEXT.lateral()
_NEXT_FREE_LATERAL = (select(_LATERAL.c.expert_id, _LATERAL.c.id, _LATERAL.c.start,
                             _LATERAL.c.end)
                      .select_from(User).join(_LATERAL, true())
                      .where(User.id == any_(bindparam("expert_ids", type_=ARRAY(Integer))))
                      .order_by(_LATERAL.c.expert_id, _LATERAL.c.start))


def _next_free_slots(session: Session, expert_ids: list[int]
                     ) -> dict[int, list[dict[str, object]]]:
    """Each expert's next few free slots (``SlotOut``'s fields)."""
    if not expert_ids:
        return {}
    out: dict[int, list[dict[str, object]]] = {}
    conn = session.connection()  # Core columns: none of the ORM's result handling
    stmt = _NEXT_FREE if conn.dialect.name == "sqlite" else _NEXT_FREE_LATERAL
    for expert_id, slot_id, start, end in conn.execute(stmt, {"expert_ids": expert_ids,
                                                             "now": utcnow()}):
        out.setdefault(expert_id, []).append({"id": slot_id, "start": start, "end": end,
                                              "status": "free"})
    return out
