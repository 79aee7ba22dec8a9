"""Views of consultations as the API returns them, with related rows batched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from yilian.server.clinic.models import Consultation, Patient, ReportVersion, Slot
from yilian.server.clinic.schemas import ConsultationOut, HistoryOut, PatientSummary, SlotOut
from yilian.server.core.models import User

_M = TypeVar("_M")


def slot_out(s: Slot) -> SlotOut:
    """The public view of a slot."""
    return SlotOut(id=s.id, start=s.start, end=s.end, status=s.status)  # type: ignore[arg-type]


async def report_states(session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    """consultation id -> "draft" | "signed" for its newest report version."""
    if not ids:
        return {}
    newest = (
        select(ReportVersion.consultation_id, func.max(ReportVersion.version).label("v"))
        .where(ReportVersion.consultation_id.in_(ids))
        .group_by(ReportVersion.consultation_id)
        .subquery()
    )
    rows = await session.execute(
        select(ReportVersion.consultation_id, ReportVersion.signed_at).join(
            newest,
            (newest.c.consultation_id == ReportVersion.consultation_id)
            & (newest.c.v == ReportVersion.version),
        )
    )
    return {cid: ("signed" if signed else "draft") for cid, signed in rows}


async def _by_id(session: AsyncSession, model: type[_M], ids: set[int]) -> dict[int, _M]:
    """Rows by primary key: those the session already holds cost no SQL, the rest one query."""
    found: dict[int, _M] = {}
    for key in ids:
        obj = session.identity_map.get(identity_key(model, key))
        if obj is not None:
            found[key] = obj  # type: ignore[assignment]
    missing = ids - found.keys()
    if missing:
        pk = inspect(model).primary_key[0]
        for obj in (await session.execute(select(model).where(pk.in_(missing)))).scalars():
            found[obj.id] = obj  # type: ignore[attr-defined]
    return found


async def consultation_views(
    session: AsyncSession, consultations: Sequence[Consultation], viewer: User, *,
    new: bool = False,
) -> list[ConsultationOut]:
    """Views of several consultations with their patients, slots and report state batched.

    ``viewer`` is the user asking (whose name needs no query); ``new``: the consultations were
    created in this transaction, so they have no report yet.
    """
    ids = [c.id for c in consultations]
    patients = await _by_id(session, Patient, {c.patient_id for c in consultations})
    slots = await _by_id(session, Slot, {c.slot_id for c in consultations if c.slot_id})
    reports = {} if new else await report_states(session, ids)
    user_ids = {c.requester_id for c in consultations} | {
        c.expert_id for c in consultations if c.expert_id
    } | {e.actor_id for c in consultations for e in c.events if e.actor_id}
    names = {viewer.id: viewer.display_name}
    for uid, u in (await _by_id(session, User, user_ids - {viewer.id})).items():
        names[uid] = u.display_name
    out = []
    for c in consultations:
        p = patients[c.patient_id]
        s = slots.get(c.slot_id) if c.slot_id else None
        out.append(
            ConsultationOut(
                id=c.id, status=c.status, kind=c.kind, urgency=c.urgency,  # type: ignore[arg-type]
                question=c.question, patient_id=c.patient_id,
                patient=PatientSummary(id=p.id, name=p.name, sex=p.sex, birth_date=p.birth_date),
                requester_id=c.requester_id, requester_name=names.get(c.requester_id, ""),
                requester_institution_id=c.requester_institution_id, expert_id=c.expert_id,
                expert_name=names.get(c.expert_id) if c.expert_id else None,
                slot=slot_out(s) if s else None,
                specialty=c.specialty, target_institution_id=c.target_institution_id,
                deadline=c.deadline, reason=c.reason,
                study_uids=[st.study_instance_uid for st in c.studies],
                report_status=reports.get(c.id, "none"),  # type: ignore[arg-type]
                history=[HistoryOut(from_status=e.from_status, to_status=e.to_status,
                                    actor_id=e.actor_id, actor_name=names.get(e.actor_id)
                                    if e.actor_id else None, at=e.at, note=e.note)
                         for e in c.events],
                created_at=c.created_at, updated_at=c.updated_at,
            )
        )
    return out
