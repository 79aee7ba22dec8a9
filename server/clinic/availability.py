"""Expert availability: weekly rules and exceptions, who may change them, and the slots they
produce (free slots regenerated, booked ones kept)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from yilian.server.clinic.models import AvailabilityException, AvailabilityRule, Slot
from yilian.server.clinic.scheduling import extend_horizon
from yilian.server.clinic.schemas import (
    AvailabilityExceptionIn,
    AvailabilityIn,
    AvailabilityOut,
    SlotsQuery,
    WeeklyRule,
)
from yilian.server.core.access import shares_alliance
from yilian.server.core.api import JsonRows
from yilian.server.core.db import utcnow
from yilian.server.core.errors import Forbidden, NotFound, ValidationFailed
from yilian.server.core.models import Institution, User

MAX_SLOT_RANGE = timedelta(days=92)


async def _get_expert(session: AsyncSession, expert_id: int) -> User:
    expert = await session.get(User, expert_id)
    if expert is None or expert.role != "specialist":
        raise NotFound(f"no expert {expert_id}")
    return expert


def slots(session: Session, expert_id: int, q: SlotsQuery) -> JsonRows:
    """An expert's slots in a time range (default: the next 14 days, at most 92): ``SlotOut``'s
    fields, as plain rows (a doctor's window holds a hundred: no model per row)."""
    start = q.from_ or utcnow()
    end = q.to or start + timedelta(days=14)
    if end <= start:
        raise ValidationFailed('"to" must be after "from"', details={"from": str(start),
                                                                     "to": str(end)})
    if end - start > MAX_SLOT_RANGE:
        raise ValidationFailed("ask for at most 92 days of slots at once")
    params = {"expert_id": expert_id, "start": start, "end": end, "status": q.status}
    # On the session's connection: Core columns need none of the ORM's result handling.
    conn = session.connection()
    rows = conn.execute(_SLOTS_WITH_STATUS if q.status else _SLOTS, params).all()
    if not rows and conn.scalar(_IS_EXPERT, {"expert_id": expert_id}) is None:
        raise NotFound(f"no expert {expert_id}")
    return JsonRows({"id": i, "start": start, "end": end, "status": status}
                    for i, start, end, status in rows)


# Built once and run with parameters (doctors ask for slots on every booking). The columns,
# not Slot objects: the answer is a list of them, and the expert's role is joined in so that
# one statement answers (a second only when there are no slots: no expert, or none free).
_SLOTS_IN_RANGE = (
    select(Slot.id, Slot.start, Slot.end, Slot.status)
    .join(User, (User.id == Slot.expert_id) & (User.role == "specialist"))
    .where(Slot.expert_id == bindparam("expert_id"), Slot.start >= bindparam("start"),
           Slot.start < bindparam("end")))
_IS_EXPERT = select(User.id).where(User.id == bindparam("expert_id"), User.role == "specialist")
_SLOTS = _SLOTS_IN_RANGE.order_by(Slot.start)
_SLOTS_WITH_STATUS = _SLOTS_IN_RANGE.where(Slot.status == bindparam("status")).order_by(Slot.start)


async def may_edit(session: AsyncSession, user: User, expert: User) -> bool:
    """Whether the user keeps this expert's availability: the expert, an admin, or a
    coordinator of an alliance the expert's institution belongs to."""
    if user.id == expert.id or user.role == "admin":
        return True
    return user.role == "coordinator" and await shares_alliance(
        session, user.institution_id, expert.institution_id)


async def _may_manage(session: AsyncSession, user: User, expert: User) -> None:
    if not await may_edit(session, user, expert):
        raise Forbidden("only the expert, a coordinator of their alliance or an admin may do "
                        "this", details={"role": user.role})


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


async def read(session: AsyncSession, expert_id: int, user: User) -> AvailabilityOut:
    """An expert's weekly rules and exceptions, and whether ``user`` may change them."""
    expert = await _get_expert(session, expert_id)
    rules = (await session.execute(select(AvailabilityRule).where(
        AvailabilityRule.expert_id == expert_id).order_by(AvailabilityRule.id))).scalars().all()
    excs = (await session.execute(select(AvailabilityException).where(
        AvailabilityException.expert_id == expert_id).order_by(
        AvailabilityException.start))).scalars().all()
    out = _availability_out(expert_id, list(rules), list(excs))
    out.can_edit = await may_edit(session, user, expert)
    return out


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


async def replace(session: AsyncSession, user: User, expert_id: int, body: AvailabilityIn,
                  horizon_days: int) -> AvailabilityOut:
    """Replace the rules and exceptions (the expert, a coordinator of their alliance or an
    admin); free slots are regenerated ``horizon_days`` ahead, booked ones kept."""
    _check_availability(body)
    expert = await _get_expert(session, expert_id)
    await _may_manage(session, user, expert)
    for x in body.exceptions:
        if x.institution_id is not None and await session.get(Institution,
                                                               x.institution_id) is None:
            raise ValidationFailed(f"no institution {x.institution_id}",
                                   details={"field": "exceptions.institution_id"})
    await session.execute(delete(AvailabilityRule).where(AvailabilityRule.expert_id == expert_id))
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
    await extend_horizon(session, expert_id, horizon_days)
    out = _availability_out(expert_id, rules, excs)
    out.can_edit = True
    return out
