"""The referral service: refer a patient, list and read referrals, move them through the
workflow. The HTTP routes parse, call one of these, and return what it returns; the rules are
in ``workflow`` (states, actors), ``targets`` (where a referral may go), ``access`` (who sees)
and ``clock`` (the intervals)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.access import get_visible_referral, referral_filter, require_side
from yilian.server.clinic.models import Patient, Referral, ReferralEvent, ReferralMilestone
from yilian.server.clinic.ports import StudyCatalog
from yilian.server.clinic.referrals import alerts, followups, moves
from yilian.server.clinic.referrals.clock import points_of
from yilian.server.clinic.referrals.schemas import ReferralIn, ReferralOut, ReferralsQuery
from yilian.server.clinic.referrals.share import (
    check_consultations,
    first_ecg_from,
    link,
)
from yilian.server.clinic.referrals.targets import check_target
from yilian.server.clinic.referrals.views import referral_views
from yilian.server.clinic.referrals.workflow import (
    ACTORS,
    BEFORE_REQUEST,
    CLOCK_SKEW,
    OPEN,
    accept_window,
    next_state,
)
from yilian.server.clinic.sharing import check_studies
from yilian.server.core import audit
from yilian.server.core.access import require_clinical
from yilian.server.core.db import utcnow
from yilian.server.core.errors import NotFound, ValidationFailed
from yilian.server.core.models import User

_VERBS = {"accept": "accept", "reject": "reject", "depart": "record the departure",
          "arrive": "record the arrival", "complete": "complete", "cancel": "cancel"}


def check_time(field: str, at: datetime, now: datetime, requested_at: datetime | None) -> None:
    """422 unless ``at`` is not in the future (a clock's skew allowed) and, when
    ``requested_at`` is given, not more than a day before it."""
    if at > now + CLOCK_SKEW:
        raise ValidationFailed(f"{field} is in the future", code="time_in_future",
                               details={"field": field})
    if requested_at is not None and at < requested_at - BEFORE_REQUEST:
        raise ValidationFailed(f"{field} is more than a day before the request",
                               code="time_too_early", details={"field": field})


def _check_input(body: ReferralIn, now: datetime) -> None:
    if body.green_channel and body.direction == "down":
        raise ValidationFailed("a green channel is for emergencies referred up",
                               details={"field": "green_channel"})
    if body.direction == "up" and (body.follow_up_due or body.follow_up_plan):
        raise ValidationFailed("follow-ups are for referrals down to a clinic",
                               details={"field": "follow_up_due" if body.follow_up_due
                                        else "follow_up_plan"})
    if body.follow_up_due is not None and body.follow_up_due <= now:
        raise ValidationFailed("the follow-up is due in the future",
                               details={"field": "follow_up_due"})
    if body.onset_at is not None:
        check_time("onset_at", body.onset_at, now, None)
    if body.first_contact_at is not None:
        if "first_contact" not in points_of(body.green_channel):
            raise ValidationFailed("first_contact_at is kept for green-channel chest pain, "
                                   "trauma, maternal and neonatal cases",
                                   details={"field": "first_contact_at"})
        check_time("first_contact_at", body.first_contact_at, now, now)


async def create(session: AsyncSession, catalog: StudyCatalog, user: User, body: ReferralIn,
                 ip: str | None) -> ReferralOut:
    """Refer a patient of the caller's institution up or down, sharing what the body names."""
    require_clinical(user, "refer patients")
    now = utcnow()
    _check_input(body, now)
    patient = await session.get(Patient, body.patient_id)
    if patient is None or patient.institution_id != user.institution_id:
        raise NotFound(f"no patient {body.patient_id} at your institution",
                       details={"field": "patient_id"})
    target, department = await check_target(session, user, body.direction,
                                            body.to_institution_id, body.department)
    wanted = ([body.consultation_id] if body.consultation_id else []) + body.consultation_ids
    field = "consultation_id" if body.consultation_id else "consultation_ids"
    consultations = await check_consultations(session, user, patient.id, wanted, field)
    studies = await check_studies(session, catalog, user, patient.id, body.study_uids)

    r = Referral(
        patient_id=patient.id, direction=body.direction, status="requested",
        from_institution_id=user.institution_id, to_institution_id=target.id,
        department_id=department.id if department else None, requester_id=user.id,
        reason=body.reason, summary=body.summary or None, green_channel=body.green_channel,
        onset_at=body.onset_at, consultation_id=body.consultation_id,
        deadline=now + accept_window(body.direction, body.green_channel),
        requested_at=now, updated_at=now, events=[], milestones=[], studies=[],
        consultations=[])
    r.events.append(ReferralEvent(from_status=None, to_status="requested", actor_id=user.id,
                                  at=now))
    r.milestones.append(ReferralMilestone(milestone="request", at=now, recorded_by_id=user.id,
                                          recorded_at=now, source="transition"))
    for point, at in (("onset", body.onset_at), ("first_contact", body.first_contact_at)):
        if at is not None:
            r.milestones.append(ReferralMilestone(milestone=point, at=at,
                                                  recorded_by_id=user.id, recorded_at=now,
                                                  source="manual"))
    session.add(r)
    link(r, user, consultations, studies)
    await session.flush()
    await first_ecg_from(session, catalog, r, studies)
    if r.direction == "down":
        followups.create_for(session, r, body.follow_up_due, body.follow_up_plan)
    await alerts.requested(session, r, user)
    await session.flush()
    audit.record(session, user, "create", "referral", r.id, patient_id=r.patient_id, ip=ip,
                 detail={"to_institution_id": r.to_institution_id, "direction": r.direction,
                         "green_channel": r.green_channel, "study_uids": studies,
                         "consultation_ids": consultations})
    return (await referral_views(session, [r], user))[0]


async def list_visible(session: AsyncSession, user: User, q: ReferralsQuery, ip: str | None
                       ) -> list[ReferralOut]:
    """The referrals of the caller's institution, sent or received: open green-channel cases
    first, then the other open ones, then the closed; newest first within each."""
    require_clinical(user, "list referrals")
    stmt = select(Referral).where(referral_filter(user))
    if q.status:
        stmt = stmt.where(Referral.status == q.status)
    if q.direction:
        stmt = stmt.where(Referral.direction == q.direction)
    if q.box == "incoming":
        stmt = stmt.where(Referral.to_institution_id == user.institution_id)
    elif q.box == "outgoing":
        stmt = stmt.where(Referral.from_institution_id == user.institution_id)
    if q.green_channel == "any":
        stmt = stmt.where(Referral.green_channel.is_not(None))
    elif q.green_channel == "none":
        stmt = stmt.where(Referral.green_channel.is_(None))
    if q.open is not None:
        is_open = Referral.status.in_(OPEN)
        stmt = stmt.where(is_open if q.open else ~is_open)
    if q.patient_id:
        stmt = stmt.where(Referral.patient_id == q.patient_id)
    rank = case((Referral.status.in_(OPEN) & Referral.green_channel.is_not(None), 0),
                (Referral.status.in_(OPEN), 1), else_=2)
    stmt = stmt.order_by(rank, Referral.requested_at.desc(), Referral.id.desc()).limit(500)
    rows = list((await session.execute(stmt)).scalars())
    audit.record(session, user, "list", "referral", None, ip=ip,
                 detail={"ids": [r.id for r in rows]})
    return await referral_views(session, rows, user)


async def read(session: AsyncSession, user: User, referral_id: int, ip: str | None
               ) -> ReferralOut:
    """One referral with its timeline, clock and what it shares."""
    r = await get_visible_referral(session, user, referral_id)
    audit.record(session, user, "read", "referral", r.id, patient_id=r.patient_id, ip=ip)
    return (await referral_views(session, [r], user))[0]


async def act(session: AsyncSession, user: User, referral_id: int, action: str, *,
              reason: str | None = None, ip: str | None = None) -> ReferralOut:
    """Take ``action`` (accept, reject, depart, arrive, complete, cancel) on a referral."""
    r = await get_visible_referral(session, user, referral_id, for_update=True)
    require_side(user, r, ACTORS[action], f"{_VERBS[action]} a referral")
    next_state(r.status, action)  # a clear 409 before anything is touched
    await moves.take(session, r, action, user, note=reason)
    audit.record(session, user, action, "referral", r.id, patient_id=r.patient_id, ip=ip,
                 detail={"status": r.status})
    return (await referral_views(session, [r], user))[0]
