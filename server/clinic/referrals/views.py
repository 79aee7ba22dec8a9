"""Referrals as the API returns them: the clock computed, related rows batched."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.access import referral_side
from yilian.server.clinic.models import Consultation, FollowUp, Patient, Referral
from yilian.server.clinic.referrals import clock
from yilian.server.clinic.referrals.schemas import (
    IntervalOut,
    MilestoneOut,
    ReferralOut,
    ReferralTimes,
    SharedConsultationOut,
)
from yilian.server.clinic.referrals.workflow import ACTORS, TERMINAL, TRANSITION_POINTS, TRANSITIONS
from yilian.server.clinic.schemas import HistoryOut, PatientSummary
from yilian.server.clinic.views import report_states
from yilian.server.core.db import utcnow
from yilian.server.core.models import Department, User

CLOSING = frozenset({"rejected", "cancelled", "expired"})


def actions_for(viewer: User, r: Referral) -> list[str]:
    """The transitions ``viewer`` may take on ``r`` now."""
    side = referral_side(viewer, r)
    return [action for action, table in TRANSITIONS.items()
            if r.status in table and ACTORS[action] in (side, "either")]


def point_rows(r: Referral) -> list[clock.PointRow]:
    """The referral's milestone rows as the clock reads them."""
    return [clock.PointRow(m.id, m.milestone, m.at, m.corrects_id) for m in r.milestones]


def columns(r: Referral) -> dict[str, datetime | None]:
    """The referral's own time columns the transition points fall back to."""
    return {column: getattr(r, column) for column in TRANSITION_POINTS.values()}


def current_points(r: Referral) -> dict[str, datetime]:
    """The current value of each of the referral's time points."""
    return clock.current_points(point_rows(r), columns(r))


async def _names(session: AsyncSession, ids: set[int], viewer: User) -> dict[int, str]:
    names = {viewer.id: viewer.display_name}
    missing = ids - names.keys()
    if missing:
        rows = await session.execute(select(User.id, User.display_name).where(
            User.id.in_(missing)))
        names.update({uid: name for uid, name in rows})
    return names


async def referral_views(session: AsyncSession, referrals: Sequence[Referral], viewer: User
                         ) -> list[ReferralOut]:
    """Views of several referrals, with patients, names, shared reports and follow-ups
    fetched once for all of them."""
    if not referrals:
        return []
    ids = [r.id for r in referrals]
    patients = {p.id: p for p in (await session.execute(select(Patient).where(
        Patient.id.in_({r.patient_id for r in referrals})))).scalars()}
    dept_ids = {r.department_id for r in referrals if r.department_id}
    departments: dict[int, str] = {
        i: name for i, name in (await session.execute(select(Department.id, Department.name)
                                                      .where(Department.id.in_(dept_ids))))
    } if dept_ids else {}
    consult_ids = {link.consultation_id for r in referrals for link in r.consultations}
    consults = {c.id: c for c in (await session.execute(select(Consultation).where(
        Consultation.id.in_(consult_ids)))).scalars()} if consult_ids else {}
    reports = await report_states(session, list(consult_ids))
    follow_ups: dict[int | None, int] = {
        rid: fid for rid, fid in (await session.execute(
            select(FollowUp.referral_id, FollowUp.id).where(FollowUp.referral_id.in_(ids))))}
    user_ids = ({r.requester_id for r in referrals}
                | {r.accepted_by_id for r in referrals if r.accepted_by_id}
                | {e.actor_id for r in referrals for e in r.events if e.actor_id}
                | {m.recorded_by_id for r in referrals for m in r.milestones
                   if m.recorded_by_id})
    names = await _names(session, user_ids, viewer)
    now = utcnow()
    out = []
    for r in referrals:
        p = patients[r.patient_id]
        rows = point_rows(r)
        gone = clock.superseded_ids(rows)
        running = None if r.status in TERMINAL else now
        closed = next((e.at for e in reversed(r.events) if e.to_status in CLOSING), None)
        out.append(ReferralOut(
            id=r.id, status=r.status, direction=r.direction,  # type: ignore[arg-type]
            patient_id=r.patient_id,
            patient=PatientSummary(id=p.id, name=p.name, sex=p.sex, birth_date=p.birth_date),
            from_institution_id=r.from_institution_id, to_institution_id=r.to_institution_id,
            department=r.department_id,
            department_name=departments.get(r.department_id) if r.department_id else None,
            green_channel=r.green_channel, reason=r.reason,  # type: ignore[arg-type]
            summary=r.summary, consultation_id=r.consultation_id,
            requester_id=r.requester_id, requester_name=names.get(r.requester_id, ""),
            accepted_by_id=r.accepted_by_id,
            accepted_by_name=names.get(r.accepted_by_id) if r.accepted_by_id else None,
            close_reason=r.close_reason, deadline=r.deadline, escalated_at=r.escalated_at,
            times=ReferralTimes(onset_at=r.onset_at, requested_at=r.requested_at,
                                accepted_at=r.accepted_at, departed_at=r.departed_at,
                                arrived_at=r.arrived_at, completed_at=r.completed_at,
                                closed_at=closed),
            milestones=[MilestoneOut(
                id=m.id, milestone=m.milestone, at=m.at, recorded_by_id=m.recorded_by_id,
                recorded_by_name=names.get(m.recorded_by_id) if m.recorded_by_id else None,
                recorded_at=m.recorded_at, source=m.source,  # type: ignore[arg-type]
                corrects_id=m.corrects_id, reason=m.reason, superseded=m.id in gone)
                for m in r.milestones],
            milestone_names=list(clock.points_of(r.green_channel)),
            intervals={name: IntervalOut(**vars(i)) for name, i in clock.intervals(
                r.green_channel, clock.current_points(rows, columns(r)), running).items()},
            study_uids=[s.study_instance_uid for s in r.studies],
            consultations=[SharedConsultationOut(
                id=c.id, kind=c.kind, question=c.question,
                report_status=reports.get(c.id, "none"))  # type: ignore[arg-type]
                for link in r.consultations if (c := consults.get(link.consultation_id))],
            follow_up_id=follow_ups.get(r.id),
            history=[HistoryOut(from_status=e.from_status, to_status=e.to_status,
                                actor_id=e.actor_id,
                                actor_name=names.get(e.actor_id) if e.actor_id else None,
                                at=e.at, note=e.note) for e in r.events],
            actions=actions_for(viewer, r), updated_at=r.updated_at,
        ))
    return out
