"""Patients: registered at the doctor's institution, seen elsewhere only through a case."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.access import can_see_patient
from yilian.server.clinic.models import Patient
from yilian.server.clinic.schemas import PatientIn, PatientOut, PatientsQuery
from yilian.server.core import audit
from yilian.server.core.access import require_clinical
from yilian.server.core.crypto import encrypt, mask_national_id
from yilian.server.core.errors import NotFound
from yilian.server.core.models import User


def patient_out(p: Patient) -> PatientOut:
    """The public view of a patient (the national ID only masked)."""
    return PatientOut(
        id=p.id, institution_id=p.institution_id, name=p.name, sex=p.sex,
        birth_date=p.birth_date, national_id_masked=p.national_id_masked, phone=p.phone,
        created_at=p.created_at,
    )


async def register(session: AsyncSession, secret_key: str, user: User, body: PatientIn,
                   ip: str | None) -> PatientOut:
    """Register a patient at the user's institution (the national ID kept encrypted)."""
    require_clinical(user, "register patients")
    nid = body.national_id.upper() if body.national_id else None
    patient = Patient(
        institution_id=user.institution_id, name=body.name, sex=body.sex,
        birth_date=body.birth_date, phone=body.phone, created_by_id=user.id,
        national_id_encrypted=encrypt(secret_key, nid) if nid else None,
        national_id_masked=mask_national_id(nid) if nid else None,
    )
    session.add(patient)
    await session.flush()
    audit.record(session, user, "create", "patient", patient.id, patient_id=patient.id, ip=ip)
    return patient_out(patient)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search(session: AsyncSession, user: User, q: PatientsQuery, ip: str | None
                 ) -> list[PatientOut]:
    """Patients of the user's institution, newest first, optionally matching a name, phone or
    masked ID (the text is literal: no wildcards)."""
    require_clinical(user, "list patients")
    stmt = select(Patient).where(Patient.institution_id == user.institution_id)
    if q.q:
        pattern = _like(q.q)
        stmt = stmt.where(or_(
            Patient.name.ilike(pattern, escape="\\"),
            Patient.phone.like(pattern, escape="\\"),
            Patient.national_id_masked.ilike(pattern, escape="\\"),
        ))
    stmt = stmt.order_by(Patient.created_at.desc(), Patient.id.desc()).limit(q.limit)
    patients = list((await session.execute(stmt)).scalars())
    audit.record(session, user, "list", "patient", None, ip=ip,
                 detail={"q": q.q, "patient_ids": [p.id for p in patients]})
    return [patient_out(p) for p in patients]


async def read(session: AsyncSession, user: User, patient_id: int, ip: str | None) -> PatientOut:
    """A patient of the user's institution, or one shared through a case they see."""
    require_clinical(user, "read patient records")
    patient = await session.get(Patient, patient_id)
    if patient is None or not await can_see_patient(session, user, patient):
        raise NotFound(f"no patient {patient_id}")
    audit.record(session, user, "read", "patient", patient.id, patient_id=patient.id, ip=ip)
    return patient_out(patient)
