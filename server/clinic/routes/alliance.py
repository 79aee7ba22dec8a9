"""Institutions, alliances, experts, their availability and slots."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from yilian.server.clinic.models import AvailabilityException, AvailabilityRule, Slot
from yilian.server.clinic.scheduling import materialize_slots
from yilian.server.clinic.schemas import (
    AllianceOut,
    AvailabilityExceptionIn,
    AvailabilityIn,
    AvailabilityOut,
    DepartmentOut,
    ExpertOut,
    ExpertsQuery,
    InstitutionOut,
    InstitutionsQuery,
    SlotOut,
    SlotsQuery,
    WeeklyRule,
)
from yilian.server.core.access import alliance_partner_ids, shares_alliance
from yilian.server.core.api import ApiRequest, ApiRouter
from yilian.server.core.db import utcnow
from yilian.server.core.errors import Forbidden, NotFound, ValidationFailed
from yilian.server.core.models import Alliance, AllianceMember, Department, Institution, User

router = ApiRouter()
NEXT_SLOTS = 3
MAX_SLOT_RANGE = timedelta(days=92)


def slot_out(s: Slot) -> SlotOut:
    """The public view of a slot."""
    return SlotOut(id=s.id, start=s.start, end=s.end, status=s.status)  # type: ignore[arg-type]


@router.route("GET", "/api/institutions", summary="Institutions, by level or alliance",
              tag="alliance", query=InstitutionsQuery, response=list[InstitutionOut])
async def list_institutions(req: ApiRequest) -> list[InstitutionOut]:
    q: InstitutionsQuery = req.query
    stmt = select(Institution).options(selectinload(Institution.departments)).order_by(
        Institution.id
    )
    if q.level:
        stmt = stmt.where(Institution.level == q.level)
    if q.alliance_id:
        stmt = stmt.join(AllianceMember, AllianceMember.institution_id == Institution.id).where(
            AllianceMember.alliance_id == q.alliance_id
        )
    async with req.db.read() as session:
        rows = (await session.execute(stmt)).scalars().all()
    return [
        InstitutionOut(
            id=i.id, name=i.name, local_name=i.local_name, level=i.level,  # type: ignore[arg-type]
            parent_id=i.parent_id,
            departments=[DepartmentOut(id=d.id, name=d.name, specialty=d.specialty)
                         for d in i.departments],
        )
        for i in rows
    ]


@router.route("GET", "/api/alliances", summary="Alliances and their members", tag="alliance",
              response=list[AllianceOut])
async def list_alliances(req: ApiRequest) -> list[AllianceOut]:
    async with req.db.read() as session:
        rows = (await session.execute(select(Alliance).order_by(Alliance.id))).scalars().all()
    return [
        AllianceOut(
            id=a.id, name=a.name, kind=a.kind, specialty=a.specialty,  # type: ignore[arg-type]
            lead_institution_id=a.lead_institution_id,
            member_ids=sorted(m.institution_id for m in a.members),
        )
        for a in rows
    ]


@router.route("GET", "/api/experts", summary="Experts by specialty and institution, with their "
              "next free slots; experts in the caller's alliances first", tag="alliance",
              query=ExpertsQuery, response=list[ExpertOut])
async def list_experts(req: ApiRequest) -> list[ExpertOut]:
    q: ExpertsQuery = req.query
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
    async with req.db.read() as session:
        rows = (await session.execute(stmt.order_by(User.id))).all()
        if q.specialty:
            rows = [r for r in rows if q.specialty in (r[0].specialties or [])]
        partners = await alliance_partner_ids(session, req.user.institution_id)
        free = await _next_free_slots(session, [r[0].id for r in rows])
    experts = [
        ExpertOut(
            id=u.id, display_name=u.display_name, institution_id=u.institution_id,
            institution_name=inst, department=dept, specialties=list(u.specialties or []),
            title=u.title, in_my_alliance=u.institution_id in partners,
            next_free_slots=[slot_out(s) for s in free.get(u.id, [])],
        )
        for u, inst, dept in rows
    ]
    experts.sort(key=lambda e: not e.in_my_alliance)
    return experts


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


async def _get_expert(session: AsyncSession, expert_id: int) -> User:
    expert = await session.get(User, expert_id)
    if expert is None or expert.role != "specialist":
        raise NotFound(f"no expert {expert_id}")
    return expert


@router.route("GET", "/api/experts/{id}/slots", summary="An expert's slots in a time range "
              "(default: the next 14 days)", tag="alliance", query=SlotsQuery,
              response=list[SlotOut])
async def list_slots(req: ApiRequest) -> list[SlotOut]:
    q: SlotsQuery = req.query
    start = q.from_ or utcnow()
    end = q.to or start + timedelta(days=14)
    if end <= start:
        raise ValidationFailed('"to" must be after "from"', details={"from": str(start),
                                                                     "to": str(end)})
    if end - start > MAX_SLOT_RANGE:
        raise ValidationFailed("ask for at most 92 days of slots at once")
    async with req.db.read() as session:
        await _get_expert(session, req.path_id())
        stmt = select(Slot).where(
            Slot.expert_id == req.path_id(), Slot.start >= start, Slot.start < end
        )
        if q.status:
            stmt = stmt.where(Slot.status == q.status)
        slots = (await session.execute(stmt.order_by(Slot.start))).scalars().all()
    return [slot_out(s) for s in slots]


async def _may_manage(session: AsyncSession, user: User, expert: User) -> None:
    if user.id == expert.id or user.role == "admin":
        return
    if user.role == "coordinator" and await shares_alliance(
        session, user.institution_id, expert.institution_id
    ):
        return
    raise Forbidden("only the expert, a coordinator of their alliance or an admin may do this")


def _availability_out(expert_id: int, rules: list[AvailabilityRule],
                      exceptions: list[AvailabilityException]) -> AvailabilityOut:
    tz = rules[0].timezone if rules else "Asia/Shanghai"
    return AvailabilityOut(
        expert_id=expert_id,
        timezone=tz,
        weekly=[WeeklyRule(weekday=r.weekday, start=r.start_time, end=r.end_time,
                           slot_minutes=r.slot_minutes) for r in rules],
        exceptions=[AvailabilityExceptionIn(kind=x.kind, start=x.start, end=x.end,  # type: ignore[arg-type]
                                            institution_id=x.institution_id,
                                            slot_minutes=x.slot_minutes, note=x.note)
                    for x in exceptions],
    )


@router.route("GET", "/api/experts/{id}/availability", summary="An expert's weekly rules and "
              "exceptions", tag="alliance", response=AvailabilityOut)
async def get_availability(req: ApiRequest) -> AvailabilityOut:
    expert_id = req.path_id()
    async with req.db.read() as session:
        await _get_expert(session, expert_id)
        rules = (await session.execute(select(AvailabilityRule).where(
            AvailabilityRule.expert_id == expert_id).order_by(AvailabilityRule.id))).scalars().all()
        excs = (await session.execute(select(AvailabilityException).where(
            AvailabilityException.expert_id == expert_id).order_by(
            AvailabilityException.start))).scalars().all()
    return _availability_out(expert_id, list(rules), list(excs))


def _check_availability(body: AvailabilityIn) -> None:
    try:
        ZoneInfo(body.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"unknown time zone {body.timezone!r}",
                               details={"field": "timezone"}) from None
    for i, r in enumerate(body.weekly):
        if r.end <= r.start:
            raise ValidationFailed("a weekly rule must end after it starts",
                                   details={"field": f"weekly.{i}"})
    for i, x in enumerate(body.exceptions):
        if x.end <= x.start:
            raise ValidationFailed("an exception must end after it starts",
                                   details={"field": f"exceptions.{i}"})
        if x.kind == "extra" and not x.slot_minutes:
            raise ValidationFailed('an "extra" window needs slot_minutes',
                                   details={"field": f"exceptions.{i}.slot_minutes"})
        if x.end - x.start > timedelta(days=366):
            raise ValidationFailed("an exception may last at most a year",
                                   details={"field": f"exceptions.{i}"})


@router.route("PUT", "/api/experts/{id}/availability", summary="Replace an expert's weekly rules "
              "and exceptions; free slots are regenerated, booked ones kept", tag="alliance",
              body=AvailabilityIn, response=AvailabilityOut)
async def put_availability(req: ApiRequest) -> AvailabilityOut:
    body: AvailabilityIn = req.body
    _check_availability(body)
    expert_id = req.path_id()
    async with req.db.write() as session:
        expert = await _get_expert(session, expert_id)
        await _may_manage(session, req.user, expert)
        for x in body.exceptions:
            if x.institution_id is not None and await session.get(Institution,
                                                                   x.institution_id) is None:
                raise ValidationFailed(f"no institution {x.institution_id}",
                                       details={"field": "exceptions.institution_id"})
        await session.execute(delete(AvailabilityRule).where(
            AvailabilityRule.expert_id == expert_id))
        await session.execute(delete(AvailabilityException).where(
            AvailabilityException.expert_id == expert_id))
        rules = [AvailabilityRule(expert_id=expert_id, weekday=r.weekday, start_time=r.start,
                                  end_time=r.end, slot_minutes=r.slot_minutes,
                                  timezone=body.timezone) for r in body.weekly]
        excs = [AvailabilityException(expert_id=expert_id, kind=x.kind, start=x.start, end=x.end,
                                      institution_id=x.institution_id,
                                      slot_minutes=x.slot_minutes, note=x.note)
                for x in body.exceptions]
        session.add_all([*rules, *excs])
        await session.flush()
        now = utcnow().replace(second=0, microsecond=0)
        await materialize_slots(session, expert_id, now,
                                now + timedelta(days=req.settings.clinic.slot_horizon_days))
    return _availability_out(expert_id, rules, excs)


