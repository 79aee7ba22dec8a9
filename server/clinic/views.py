"""Views of consultations as the API returns them, with related rows batched."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from yilian.server.clinic.models import (
    Consultation,
    ConsultationEvent,
    Patient,
    ReportVersion,
    Slot,
)
from yilian.server.clinic.schemas import ConsultationOut, HistoryOut, PatientSummary, SlotOut
from yilian.server.core.db import by_ids
from yilian.server.core.models import User


def slot_out(s: Slot) -> SlotOut:
    """The public view of a slot."""
    return SlotOut(id=s.id, start=s.start, end=s.end, status=s.status)  # type: ignore[arg-type]


async def report_states(session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    """consultation id -> "draft" | "signed" for its newest report version."""
    if not ids:
        return {}
    return await session.run_sync(report_states_sync, ids)


def report_states_sync(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """:func:`report_states` on a synchronous session."""
    if not ids:
        return {}
    rows = session.execute(_NEWEST_REPORTS, {"ids": list(ids)})
    return {cid: ("signed" if signed else "draft") for cid, signed in rows}


# Built once, run with parameters (every consultation view runs it).
_NEWEST = (
    select(ReportVersion.consultation_id, func.max(ReportVersion.version).label("v"))
    .where(ReportVersion.consultation_id.in_(bindparam("ids", expanding=True)))
    .group_by(ReportVersion.consultation_id)
    .subquery()
)
_NEWEST_REPORTS = select(ReportVersion.consultation_id, ReportVersion.signed_at).join(
    _NEWEST, (_NEWEST.c.consultation_id == ReportVersion.consultation_id)
    & (_NEWEST.c.v == ReportVersion.version))


async def consultation_views(
    session: AsyncSession, consultations: Sequence[Consultation], viewer: User,
) -> list[ConsultationOut]:
    """Views of several consultations with their patients, slots and report state batched.

    ``viewer`` is the user asking (whose name needs no query).
    """
    return await session.run_sync(consultation_views_sync, consultations, viewer)


def consultation_views_sync(
    session: Session, consultations: Sequence[Consultation], viewer: User,
) -> list[ConsultationOut]:
    """:func:`consultation_views` on a synchronous session."""
    ids = [c.id for c in consultations]
    patients = by_ids(session, Patient, {c.patient_id for c in consultations})
    slots = by_ids(session, Slot, {c.slot_id for c in consultations if c.slot_id})
    reports = report_states_sync(session, ids)
    user_ids = {c.requester_id for c in consultations} | {
        c.expert_id for c in consultations if c.expert_id
    } | {e.actor_id for c in consultations for e in c.events if e.actor_id}
    names = {viewer.id: viewer.display_name}
    for uid, u in by_ids(session, User, user_ids - {viewer.id}).items():
        names[uid] = u.display_name
    return [consultation_view(c, patient_summary(patients[c.patient_id]),
                              slot_out(slots[c.slot_id]) if c.slot_id in slots else None,
                              c.events,
                              [st.study_instance_uid for st in c.studies],
                              reports.get(c.id, "none"), names)
            for c in consultations]


def patient_summary(p: Patient) -> PatientSummary:
    """What a consultation's view shows of its patient."""
    return PatientSummary(id=p.id, name=p.name, sex=p.sex, birth_date=p.birth_date)


def consultation_view(c: Consultation, patient: PatientSummary, slot: SlotOut | None,
                      events: Sequence[ConsultationEvent], study_uids: list[str],
                      report_status: str, names: dict[int, str]) -> ConsultationOut:
    """The view of one consultation from its related rows; ``names``: user id -> display name
    (of its requester, expert and actors)."""
    return ConsultationOut(
        id=c.id, status=c.status, kind=c.kind, urgency=c.urgency,  # type: ignore[arg-type]
        question=c.question, patient_id=c.patient_id,
        patient=patient,
        requester_id=c.requester_id, requester_name=names.get(c.requester_id, ""),
        requester_institution_id=c.requester_institution_id, expert_id=c.expert_id,
        expert_name=names.get(c.expert_id) if c.expert_id else None,
        slot=slot,
        specialty=c.specialty, target_institution_id=c.target_institution_id,
        deadline=c.deadline, reason=c.reason, study_uids=study_uids,
        report_status=report_status,  # type: ignore[arg-type]
        history=[HistoryOut(from_status=e.from_status, to_status=e.to_status,
                            actor_id=e.actor_id, actor_name=names.get(e.actor_id)
                            if e.actor_id else None, at=e.at, note=e.note)
                 for e in events],
        created_at=c.created_at, updated_at=c.updated_at,
    )
