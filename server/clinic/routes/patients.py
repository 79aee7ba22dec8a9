"""Patients, registered at the caller's institution."""

from __future__ import annotations

from sqlalchemy import or_, select

from yilian.server.clinic.access import can_see_patient
from yilian.server.clinic.models import Patient
from yilian.server.clinic.schemas import PatientIn, PatientOut, PatientsQuery
from yilian.server.core import audit
from yilian.server.core.access import require_clinical
from yilian.server.core.api import ApiRequest, ApiRouter
from yilian.server.core.crypto import encrypt, mask_national_id
from yilian.server.core.errors import NotFound

router = ApiRouter()


def patient_out(p: Patient) -> PatientOut:
    """The public view of a patient (the national ID only masked)."""
    return PatientOut(
        id=p.id, institution_id=p.institution_id, name=p.name, sex=p.sex,
        birth_date=p.birth_date, national_id_masked=p.national_id_masked, phone=p.phone,
        created_at=p.created_at,
    )


@router.route("POST", "/api/patients", summary="Register a patient at the caller's institution",
              tag="patients", body=PatientIn, response=PatientOut, status=201)
async def create_patient(req: ApiRequest) -> PatientOut:
    require_clinical(req.user, "register patients")
    body: PatientIn = req.body
    nid = body.national_id.upper() if body.national_id else None
    patient = Patient(
        institution_id=req.user.institution_id, name=body.name, sex=body.sex,
        birth_date=body.birth_date, phone=body.phone, created_by_id=req.user.id,
        national_id_encrypted=encrypt(req.settings.secret_key, nid) if nid else None,
        national_id_masked=mask_national_id(nid) if nid else None,
    )
    async with req.db.write() as session:
        session.add(patient)
        await session.flush()
        audit.record(session, req.user, "create", "patient", patient.id, patient_id=patient.id,
                     ip=req.ip)
    return patient_out(patient)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@router.route("GET", "/api/patients", summary="Patients registered at the caller's "
              "institution, newest first, optionally matching a name, phone or masked ID",
              tag="patients", query=PatientsQuery, response=list[PatientOut])
async def list_patients(req: ApiRequest) -> list[PatientOut]:
    require_clinical(req.user, "list patients")
    q: PatientsQuery = req.query
    stmt = select(Patient).where(Patient.institution_id == req.user.institution_id)
    if q.q:
        pattern = _like(q.q)
        stmt = stmt.where(or_(
            Patient.name.ilike(pattern, escape="\\"),
            Patient.phone.like(pattern, escape="\\"),
            Patient.national_id_masked.ilike(pattern, escape="\\"),
        ))
    stmt = stmt.order_by(Patient.created_at.desc(), Patient.id.desc()).limit(q.limit)
    async with req.db.write() as session:
        patients = list((await session.execute(stmt)).scalars())
        audit.record(session, req.user, "list", "patient", None, ip=req.ip,
                     detail={"q": q.q, "patient_ids": [p.id for p in patients]})
    return [patient_out(p) for p in patients]


@router.route("GET", "/api/patients/{id}", summary="A patient of the caller's institution, or "
              "one shared through a consultation", tag="patients", response=PatientOut)
async def get_patient(req: ApiRequest) -> PatientOut:
    require_clinical(req.user, "read patient records")
    patient_id = req.path_id()
    async with req.db.write() as session:
        patient = await session.get(Patient, patient_id)
        if patient is None or not await can_see_patient(session, req.user, patient):
            raise NotFound(f"no patient {patient_id}")
        audit.record(session, req.user, "read", "patient", patient.id, patient_id=patient.id,
                     ip=req.ip)
    return patient_out(patient)
