"""The alliance as doctors browse it: institutions, alliances, and experts with their next
free slots (experts of the caller's own alliances first)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from yilian.server.clinic.models import Slot
from yilian.server.clinic.schemas import (
    AllianceOut,
    DepartmentOut,
    ExpertOut,
    ExpertsQuery,
    InstitutionOut,
    InstitutionsQuery,
)
from yilian.server.clinic.views import slot_out
from yilian.server.core.access import alliance_partner_ids
from yilian.server.core.db import utcnow
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


async def experts(session: AsyncSession, user: User, q: ExpertsQuery) -> list[ExpertOut]:
    """Active specialists with their next free slots; the caller's alliance partners first."""
    stmt = (
        select(User, Institution.name, Department.name)
        .join(Institution, Institution.id == User.institution_id)
        .outerjoin(Department, Department.id == User.department_id)
        .where(User.role == "specialist", User.active.is_(True))
    )
    if q.institution_id:
        stmt = stmt.where(User.institution_id == q.institution_id)
    if q.alliance_id:
        stmt = stmt.join(AllianceMember, AllianceMember.institution_id == User.institution_id).where(
            AllianceMember.alliance_id == q.alliance_id
        )
    rows = (await session.execute(stmt.order_by(User.id))).all()
    if q.specialty:
        rows = [r for r in rows if q.specialty in (r[0].specialties or [])]
    partners = await alliance_partner_ids(session, user.institution_id)
    free = await _next_free_slots(session, [r[0].id for r in rows])
    found = [
        ExpertOut(
            id=u.id, display_name=u.display_name, institution_id=u.institution_id,
            institution_name=inst, department=dept, specialties=list(u.specialties or []),
            title=u.title, in_my_alliance=u.institution_id in partners,
            next_free_slots=[slot_out(s) for s in free.get(u.id, [])],
        )
        for u, inst, dept in rows
    ]
    found.sort(key=lambda e: not e.in_my_alliance)
    return found


async def _next_free_slots(session: AsyncSession, expert_ids: list[int]) -> dict[int, list[Slot]]:
    """Each expert's next few free slots, in one query (a window over the slot index)."""
    if not expert_ids:
        return {}
    rank = func.row_number().over(partition_by=Slot.expert_id, order_by=Slot.start).label("rank")
    ranked = (
        select(Slot.id, rank)
        .where(Slot.expert_id.in_(expert_ids), Slot.status == "free", Slot.start > utcnow())
        .subquery()
    )
    slots = (
        await session.execute(
            select(Slot).join(ranked, ranked.c.id == Slot.id).where(ranked.c.rank <= NEXT_SLOTS)
            .order_by(Slot.expert_id, Slot.start)
        )
    ).scalars()
    out: dict[int, list[Slot]] = {}
    for slot in slots:
        out.setdefault(slot.expert_id, []).append(slot)
    return out
