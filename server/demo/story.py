"""Writing a referral's history straight into its rows, as the referral service would have
left them: the states by the workflow's own table, each transition an event with its actor and
time, the stamped time columns, and the time points as one timeline (transition points with
source "transition", the clinical ones "manual", a first ECG from a stored ECG "ecg")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.models import (
    Consultation,
    Patient,
    Referral,
    ReferralConsultation,
    ReferralEvent,
    ReferralMilestone,
    ReferralStudy,
)
from yilian.server.clinic.referrals.workflow import (
    CLINICAL_POINTS,
    MILESTONES,
    STAMPS,
    TRANSITION_POINTS,
    accept_window,
    next_state,
)
from yilian.server.core.models import Department, Institution, User

#: the state whose arrival is a time point of the clock: accepted -> accept, arrived -> door...
STATE_POINT = {state: point for point, column in TRANSITION_POINTS.items()
               for state, stamped in STAMPS.items() if stamped == column}
CLOSING = ("reject", "cancel", "expire")


@dataclass(frozen=True)
class Step:
    """One transition: ``actor`` None is the system (expiry)."""

    action: str
    at: datetime
    actor: User | None
    note: str | None = None


@dataclass(frozen=True)
class Point:
    """A clinical time point recorded by ``by`` (None: the system)."""

    milestone: str
    at: datetime
    by: User | None
    source: str = "manual"


def referral(session: AsyncSession, *, patient: Patient, direction: str, to: Institution,
             department: Department | None, requester: User, reason: str,
             requested_at: datetime, summary: str | None = None,
             green_channel: str | None = None, onset_at: datetime | None = None,
             steps: Iterable[Step] = (), points: Iterable[Point] = (),
             escalated_at: datetime | None = None,
             consultations: Iterable[Consultation] = (),
             study_uids: Iterable[str] = ()) -> Referral:
    """A referral requested at ``requested_at`` and moved through ``steps``, in order."""
    r = Referral(
        patient_id=patient.id, direction=direction, status="requested",
        from_institution_id=requester.institution_id, to_institution_id=to.id,
        department_id=department.id if department else None, requester_id=requester.id,
        reason=reason, summary=summary, green_channel=green_channel, onset_at=onset_at,
        deadline=requested_at + accept_window(direction, green_channel),
        escalated_at=escalated_at, requested_at=requested_at, updated_at=requested_at,
        events=[], milestones=[], studies=[], consultations=[])
    r.events.append(ReferralEvent(from_status=None, to_status="requested",
                                  actor_id=requester.id, at=requested_at))
    timeline = [ReferralMilestone(milestone="request", at=requested_at,
                                  recorded_by_id=requester.id, recorded_at=requested_at,
                                  source="transition")]
    for step in steps:
        new = next_state(r.status, step.action)
        actor_id = step.actor.id if step.actor else None
        r.events.append(ReferralEvent(from_status=r.status, to_status=new, actor_id=actor_id,
                                      at=step.at, note=step.note))
        if new in STAMPS:
            setattr(r, STAMPS[new], step.at)
        if new in STATE_POINT:
            timeline.append(ReferralMilestone(milestone=STATE_POINT[new], at=step.at,
                                              recorded_by_id=actor_id, recorded_at=step.at,
                                              source="transition"))
        if step.action == "accept":
            r.accepted_by_id = actor_id
        if step.action in CLOSING:
            r.close_reason = step.note
        r.status, r.updated_at = new, step.at
    for p in points:
        channel = MILESTONES.get(green_channel or "", ())
        if p.milestone not in CLINICAL_POINTS or p.milestone not in channel:
            raise ValueError(f"{p.milestone!r} is not a time point of {green_channel!r}")
        timeline.append(ReferralMilestone(milestone=p.milestone, at=p.at,
                                          recorded_by_id=p.by.id if p.by else None,
                                          recorded_at=p.at, source=p.source))
    r.milestones = sorted(timeline, key=lambda m: m.at)
    r.consultations = [ReferralConsultation(consultation_id=c.id, shared_by_id=requester.id,
                                            shared_at=requested_at) for c in consultations]
    r.studies = [ReferralStudy(study_instance_uid=uid, shared_by_id=requester.id,
                               shared_at=requested_at) for uid in study_uids]
    session.add(r)
    return r
