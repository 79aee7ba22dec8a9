"""Follow-ups (随访) of downward referrals at the receiving clinic.

The follow-up is created with the referral (so the date and plan the referring doctor set are
kept where they belong) and is listed at the clinic once the clinic has accepted the referral;
rejecting, cancelling or expiring the referral cancels it. A due date the referring doctor did
not set is seven days after the request, moved to seven days after the arrival when the patient
arrives."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.models import FollowUp, Patient, Referral
from yilian.server.clinic.referrals import alerts
from yilian.server.clinic.referrals.schemas import FollowUpOut, FollowUpsQuery
from yilian.server.clinic.referrals.workflow import FOLLOW_UP_AFTER
from yilian.server.clinic.schemas import PatientSummary
from yilian.server.core import audit
from yilian.server.core.access import require_clinical
from yilian.server.core.db import utcnow
from yilian.server.core.errors import InvalidTransition, NotFound
from yilian.server.core.models import User

#: The due date in a notification is the clinic's calendar day.
DISPLAY_ZONE = ZoneInfo("Asia/Shanghai")
#: States of the referral in which its follow-up is the clinic's to do.
LISTED = ("accepted", "in_transit", "arrived", "completed")


def create_for(session: AsyncSession, r: Referral, due: datetime | None, plan: str | None
               ) -> FollowUp:
    """The follow-up of a new downward referral, at its receiving clinic."""
    f = FollowUp(referral_id=r.id, patient_id=r.patient_id, institution_id=r.to_institution_id,
                 plan=plan or None, due_at=due or r.requested_at + FOLLOW_UP_AFTER,
                 status="due", created_at=r.requested_at)
    session.add(f)
    return f


async def on_transition(session: AsyncSession, r: Referral, action: str, actor: User | None
                        ) -> None:
    """Keep the referral's open follow-up in step with it."""
    f = await session.scalar(select(FollowUp).where(FollowUp.referral_id == r.id,
                                                    FollowUp.status == "due"))
    if f is None:
        return
    if action == "accept":
        f.assigned_to_id = actor.id if actor else None
        due = f.due_at.astimezone(DISPLAY_ZONE).date().isoformat()
        await alerts.follow_up_due(session, r, f, due)
    elif action == "arrive" and r.arrived_at is not None \
            and f.due_at == r.requested_at + FOLLOW_UP_AFTER:
        f.due_at = r.arrived_at + FOLLOW_UP_AFTER
    elif action in ("reject", "cancel", "expire"):
        f.status = "cancelled"


def _out(f: FollowUp, patient: Patient, referral: Referral | None, names: dict[int, str],
         now: datetime) -> FollowUpOut:
    return FollowUpOut(
        id=f.id, referral_id=f.referral_id, patient_id=f.patient_id,
        patient=PatientSummary(id=patient.id, name=patient.name, sex=patient.sex,
                               birth_date=patient.birth_date),
        institution_id=f.institution_id, assigned_to_id=f.assigned_to_id,
        assigned_to_name=names.get(f.assigned_to_id) if f.assigned_to_id else None,
        plan=f.plan, due_at=f.due_at, status=f.status,  # type: ignore[arg-type]
        overdue=f.status == "due" and f.due_at < now, outcome=f.outcome,
        completed_at=f.completed_at,
        completed_by_name=names.get(f.completed_by_id) if f.completed_by_id else None,
        from_institution_id=referral.from_institution_id if referral else None)


async def _views(session: AsyncSession, rows: list[tuple[FollowUp, Patient, Referral | None]]
                 ) -> list[FollowUpOut]:
    ids = {i for f, _, _ in rows for i in (f.assigned_to_id, f.completed_by_id) if i}
    names: dict[int, str] = {
        uid: name for uid, name in (await session.execute(
            select(User.id, User.display_name).where(User.id.in_(ids))))} if ids else {}
    now = utcnow()
    return [_out(f, p, r, names, now) for f, p, r in rows]


async def list_due(session: AsyncSession, user: User, q: FollowUpsQuery, ip: str | None
                   ) -> list[FollowUpOut]:
    """The caller's institution's follow-ups, earliest due first: by default the open ones
    (overdue included); ``due`` only those not yet overdue, ``overdue`` only those past."""
    require_clinical(user, "list follow-ups")
    now = utcnow()
    stmt = (select(FollowUp, Patient, Referral)
            .join(Patient, Patient.id == FollowUp.patient_id)
            .outerjoin(Referral, Referral.id == FollowUp.referral_id)
            .where(FollowUp.institution_id == user.institution_id,
                   or_(FollowUp.referral_id.is_(None), Referral.status.in_(LISTED))))
    if q.status in (None, "due", "overdue"):
        stmt = stmt.where(FollowUp.status == "due")
        if q.status == "due":
            stmt = stmt.where(FollowUp.due_at >= now)
        elif q.status == "overdue":
            stmt = stmt.where(FollowUp.due_at < now)
    else:
        stmt = stmt.where(FollowUp.status == q.status)
    if q.patient_id:
        stmt = stmt.where(FollowUp.patient_id == q.patient_id)
    rows: list[tuple[FollowUp, Patient, Referral | None]] = [
        (f, p, r) for f, p, r in (await session.execute(
            stmt.order_by(FollowUp.due_at, FollowUp.id).limit(500))).all()]
    audit.record(session, user, "list", "follow_up", None, ip=ip,
                 detail={"ids": [f.id for f, _, _ in rows]})
    return await _views(session, rows)


async def complete(session: AsyncSession, user: User, follow_up_id: int, outcome: str,
                   ip: str | None) -> FollowUpOut:
    """Record the follow-up's outcome (staff of its clinic); 409 once it is closed."""
    require_clinical(user, "record follow-ups")
    row = (await session.execute(
        select(FollowUp, Patient, Referral).join(Patient, Patient.id == FollowUp.patient_id)
        .outerjoin(Referral, Referral.id == FollowUp.referral_id)
        .where(FollowUp.id == follow_up_id).with_for_update(of=FollowUp))).first()
    if row is None or row[0].institution_id != user.institution_id:
        raise NotFound(f"no follow-up {follow_up_id}")
    f, patient, referral = row
    if f.status != "due":
        raise InvalidTransition(f'cannot complete a follow-up in state "{f.status}"',
                                details={"status": f.status})
    if referral is not None and referral.status not in LISTED:
        raise InvalidTransition(f'cannot complete the follow-up of a referral in state '
                                f'"{referral.status}"', details={"status": referral.status})
    f.status, f.outcome = "completed", outcome
    f.completed_at, f.completed_by_id = utcnow(), user.id
    await session.flush()
    audit.record(session, user, "complete", "follow_up", f.id, patient_id=f.patient_id, ip=ip)
    return (await _views(session, [(f, patient, referral)]))[0]
