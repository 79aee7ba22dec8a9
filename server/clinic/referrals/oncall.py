"""On-call rosters of the receiving departments, and their heads: who a green-channel alert
goes to, and who it escalates to.

Kept by the coordinators of an alliance the department's institution belongs to (as they keep
its experts' availability) and by administrators. Anyone logged in may read a roster: it
names staff and times, no patient."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.models import OnCallShift
from yilian.server.clinic.referrals.schemas import (
    DepartmentHeadIn,
    DepartmentHeadOut,
    OnCallIn,
    OnCallOut,
    OnCallQuery,
)
from yilian.server.core import audit
from yilian.server.core.access import shares_alliance
from yilian.server.core.db import utcnow
from yilian.server.core.errors import Forbidden, NotFound, ValidationFailed
from yilian.server.core.models import CLINICAL_ROLES, Department, User

#: The longest single shift.
MAX_SHIFT = timedelta(days=7)
#: The roster shown when no range is asked for: from now on, this far.
DEFAULT_RANGE = timedelta(days=7)


async def _department(session: AsyncSession, department_id: int, field: str | None = None
                      ) -> Department:
    department = await session.get(Department, department_id)
    if department is None:
        if field:
            raise ValidationFailed(f"no department {department_id}", details={"field": field})
        raise NotFound(f"no department {department_id}")
    return department


async def require_keeper(session: AsyncSession, user: User, department: Department) -> None:
    """403 unless the user keeps this department's roster: an admin, or a coordinator of an
    alliance its institution belongs to."""
    if user.role == "admin":
        return
    if user.role == "coordinator" and await shares_alliance(
            session, user.institution_id, department.institution_id):
        return
    raise Forbidden("only a coordinator of the department's alliance or an admin may change "
                    "its roster", details={"role": user.role})


async def staff_of(session: AsyncSession, user_id: int, department: Department,
                   field: str = "user_id") -> User:
    """The user, if they are active clinical staff of the department's institution (422)."""
    staff = await session.get(User, user_id)
    if staff is None or not staff.active or staff.role not in CLINICAL_ROLES \
            or staff.institution_id != department.institution_id:
        raise ValidationFailed(f"user {user_id} is not clinical staff of the department's "
                               "institution", code="not_staff", details={"field": field})
    return staff


async def shifts(session: AsyncSession, q: OnCallQuery) -> list[OnCallOut]:
    """Shifts overlapping the range (default: the next seven days), earliest first."""
    now = utcnow()
    start = q.from_ or now
    end = q.to or start + DEFAULT_RANGE
    if end <= start:
        raise ValidationFailed("'to' is after 'from'", details={"field": "to"})
    stmt = (select(OnCallShift, Department, User)
            .join(Department, Department.id == OnCallShift.department_id)
            .join(User, User.id == OnCallShift.user_id)
            .where(OnCallShift.end > start, OnCallShift.start < end))
    if q.department_id:
        stmt = stmt.where(OnCallShift.department_id == q.department_id)
    if q.institution_id:
        stmt = stmt.where(Department.institution_id == q.institution_id)
    rows = (await session.execute(stmt.order_by(OnCallShift.start, OnCallShift.id)
                                  .limit(2000))).all()
    return [_out(s, d, u) for s, d, u in rows]


def _out(s: OnCallShift, d: Department, u: User) -> OnCallOut:
    now = utcnow()
    return OnCallOut(id=s.id, department_id=d.id, department_name=d.name,
                     institution_id=d.institution_id, user_id=u.id, user_name=u.display_name,
                     start=s.start, end=s.end, now=s.start <= now < s.end)


async def add_shift(session: AsyncSession, user: User, body: OnCallIn, ip: str | None
                    ) -> OnCallOut:
    """Put someone on call for a department from ``start`` to ``end``."""
    department = await _department(session, body.department_id, "department_id")
    await require_keeper(session, user, department)
    staff = await staff_of(session, body.user_id, department)
    if body.end <= body.start:
        raise ValidationFailed("a shift ends after it starts", details={"field": "end"})
    if body.end - body.start > MAX_SHIFT:
        raise ValidationFailed("a shift is at most 7 days", code="shift_too_long",
                               details={"field": "end"})
    shift = OnCallShift(department_id=department.id, user_id=staff.id, start=body.start,
                        end=body.end, created_by_id=user.id, created_at=utcnow())
    session.add(shift)
    await session.flush()
    audit.record(session, user, "create", "on_call_shift", shift.id, ip=ip,
                 detail={"department_id": department.id, "user_id": staff.id,
                         "start": body.start.isoformat(), "end": body.end.isoformat()})
    return _out(shift, department, staff)


async def remove_shift(session: AsyncSession, user: User, shift_id: int, ip: str | None
                       ) -> None:
    """Take a shift off the roster."""
    shift = await session.get(OnCallShift, shift_id)
    if shift is None:
        raise NotFound(f"no on-call shift {shift_id}")
    department = await _department(session, shift.department_id)
    await require_keeper(session, user, department)
    audit.record(session, user, "delete", "on_call_shift", shift.id, ip=ip,
                 detail={"department_id": department.id, "user_id": shift.user_id})
    await session.delete(shift)


async def set_head(session: AsyncSession, user: User, department_id: int,
                   body: DepartmentHeadIn, ip: str | None) -> DepartmentHeadOut:
    """Name (or, with null, clear) the head a department's green-channel alerts escalate to."""
    department = await _department(session, department_id)
    await require_keeper(session, user, department)
    head = await staff_of(session, body.user_id, department) if body.user_id else None
    department.head_id = head.id if head else None
    await session.flush()
    audit.record(session, user, "set_head", "department", department.id, ip=ip,
                 detail={"head_id": department.head_id})
    return DepartmentHeadOut(id=department.id, name=department.name,
                             institution_id=department.institution_id,
                             head_id=department.head_id,
                             head_name=head.display_name if head else None)
