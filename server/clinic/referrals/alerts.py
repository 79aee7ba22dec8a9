"""Who hears of what happens to a referral, and the notifications that tell them.

Everything runs in the caller's write transaction (``core.notify.send``): a refused change
notifies nobody. The person who acted is not told of their own action.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.models import FollowUp, OnCallShift, Referral
from yilian.server.clinic.referrals.notices import texts
from yilian.server.core import notify
from yilian.server.core.db import utcnow
from yilian.server.core.models import (
    CLINICAL_ROLES,
    Alliance,
    AllianceMember,
    Department,
    Institution,
    Notification,
    User,
)

#: The kind each transition announces to the referring doctor.
TRANSITION_KINDS = {"accept": "referral.accepted", "reject": "referral.rejected",
                    "depart": "referral.departed", "arrive": "referral.arrived",
                    "cancel": "referral.cancelled", "expire": "referral.expired"}
#: Transitions the receiving team is also told of (the patient is coming, or is not).
RECEIVING_TOO = frozenset({"depart", "cancel"})
#: Transitions after which a green-channel alert needs nobody's action any more.
SETTLES = frozenset({"accept", "reject", "cancel", "expire"})
ALERT_KINDS = ("referral.green_channel", "referral.escalated")


async def _settle_alerts(session: AsyncSession, r: Referral) -> list[User]:
    """Mark the referral's unread alerts read and return who had them: the other doctors on
    call (and an escalation's head and coordinators) learn that it is taken care of, and
    their banners go."""
    holders = (await session.execute(
        update(Notification)
        .where(Notification.resource_type == "referral",
               Notification.resource_id == str(r.id),
               Notification.kind.in_(ALERT_KINDS), Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .returning(Notification.user_id))).scalars().all()
    return await _users(session, User.id.in_(set(holders))) if holders else []


async def _users(session: AsyncSession, *where: ColumnElement[bool]) -> list[User]:
    return list((await session.execute(
        select(User).where(User.active.is_(True), *where).order_by(User.id))).scalars())


async def on_call(session: AsyncSession, *, department_id: int | None = None,
                  institution_id: int | None = None, at: datetime | None = None
                  ) -> list[User]:
    """Who is on call at ``at`` (default now) for a department, or for any department of an
    institution."""
    when = at or utcnow()
    shifts = select(OnCallShift.user_id).where(OnCallShift.start <= when, OnCallShift.end > when)
    if department_id is not None:
        shifts = shifts.where(OnCallShift.department_id == department_id)
    else:
        shifts = shifts.join(Department, Department.id == OnCallShift.department_id).where(
            Department.institution_id == institution_id)
    return await _users(session, User.id.in_(shifts))


async def department_staff(session: AsyncSession, department_id: int) -> list[User]:
    """The clinical staff of a department."""
    return await _users(session, User.department_id == department_id,
                        User.role.in_(CLINICAL_ROLES))


async def institution_clinicians(session: AsyncSession, institution_id: int) -> list[User]:
    """An institution's specialists, or, where it has none (a clinic), its clinical staff."""
    specialists = await _users(session, User.institution_id == institution_id,
                               User.role == "specialist")
    return specialists or await _users(session, User.institution_id == institution_id,
                                       User.role.in_(CLINICAL_ROLES))


async def receiving_team(session: AsyncSession, r: Referral, *, on_call_first: bool
                         ) -> list[User]:
    """Who answers a referral at the receiving side: those on call now (if ``on_call_first``),
    else the receiving department's staff, else the institution's clinicians."""
    if on_call_first:
        found = await on_call(session, department_id=r.department_id,
                              institution_id=r.to_institution_id)
        if found:
            return found
    if r.department_id is not None:
        found = await department_staff(session, r.department_id)
        if found:
            return found
    return await institution_clinicians(session, r.to_institution_id)


async def department_head(session: AsyncSession, department_id: int | None) -> list[User]:
    """The department's head, if it has one."""
    if department_id is None:
        return []
    head = await session.scalar(select(Department.head_id).where(Department.id == department_id))
    return await _users(session, User.id == head) if head else []


async def coordinators(session: AsyncSession, institution_id: int) -> list[User]:
    """Coordinators at the institution or at the lead institution of an alliance it is in."""
    leads = (select(Alliance.lead_institution_id)
             .join(AllianceMember, AllianceMember.alliance_id == Alliance.id)
             .where(AllianceMember.institution_id == institution_id))
    return await _users(session, User.role == "coordinator",
                        (User.institution_id == institution_id) | User.institution_id.in_(leads))


async def _fields(session: AsyncSession, r: Referral) -> dict[str, object]:
    rows = (await session.execute(select(Institution).where(
        Institution.id.in_((r.from_institution_id, r.to_institution_id))))).scalars()
    names = {i.id: (i.name, i.local_name) for i in rows}
    # No reason, summary or patient name: a notification can show on a locked screen and
    # its inbox is not audited; the referral page shows the rest, audited.
    return {"from_name": names[r.from_institution_id], "to_name": names[r.to_institution_id],
            "channel": r.green_channel or "", "direction": r.direction, "id": r.id}


async def send(session: AsyncSession, r: Referral, kind: str, recipients: Iterable[User],
               actor: User | None = None, *, urgent: bool = False, **extra: object) -> int:
    """Notify ``recipients`` (not the actor) of ``kind`` about ``r``; how many were."""
    users = [u for u in recipients if actor is None or u.id != actor.id]
    if not users:
        return 0
    fields = await _fields(session, r) | extra
    rows = notify.send(session, users, kind, texts(kind, **fields), resource_type="referral",
                       resource_id=r.id, urgent=urgent)
    return len(rows)


async def requested(session: AsyncSession, r: Referral, actor: User) -> None:
    """A new referral: a green channel alerts whoever is on call now (urgent), else the
    department's staff and head; an ordinary one goes to the department's staff."""
    if r.green_channel:
        team = await on_call(session, department_id=r.department_id,
                             institution_id=r.to_institution_id)
        if not team:
            team = (await receiving_team(session, r, on_call_first=False)
                    + await department_head(session, r.department_id))
        await send(session, r, "referral.green_channel", team, actor, urgent=True)
    else:
        await send(session, r, "referral.requested",
                   await receiving_team(session, r, on_call_first=False), actor)


async def transitioned(session: AsyncSession, r: Referral, action: str, actor: User | None
                       ) -> None:
    """Tell the referring doctor (and, when the patient's coming changes, the receiving team)."""
    kind = TRANSITION_KINDS.get(action)
    if kind is None:
        return
    recipients = await _users(session, User.id == r.requester_id)
    if action in SETTLES:
        recipients += await _settle_alerts(session, r)
    if action in RECEIVING_TOO:
        # the doctor who accepted it, even once their shift is over, and whoever is on now
        if r.accepted_by_id is not None:
            recipients += await _users(session, User.id == r.accepted_by_id)
        recipients += await receiving_team(session, r, on_call_first=True)
    await send(session, r, kind, recipients, actor)


async def escalated(session: AsyncSession, r: Referral, waited_minutes: int) -> int:
    """The green channel has waited too long: the department head and the coordinators."""
    recipients = (await department_head(session, r.department_id)
                  + await coordinators(session, r.to_institution_id))
    return await send(session, r, "referral.escalated", recipients, urgent=True,
                      minutes=waited_minutes)


async def follow_up_due(session: AsyncSession, r: Referral, f: FollowUp, due_text: str
                        ) -> None:
    """A follow-up now waits at the receiving clinic: its clinical staff, the doctor who
    accepted included (the inbox keeps the due date for them)."""
    staff = await _users(session, User.institution_id == f.institution_id,
                         User.role.in_(CLINICAL_ROLES))
    await send(session, r, "follow_up.created", staff, None, due=due_text)
