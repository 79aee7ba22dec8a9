"""Patients over HTTP (the rules are in ``clinic.patients``)."""

from __future__ import annotations

from yilian.server.clinic import patients
from yilian.server.clinic.schemas import PatientIn, PatientOut, PatientsQuery
from yilian.server.core.api import ApiRequest, ApiRouter

router = ApiRouter()


@router.route("POST", "/api/patients", summary="Register a patient at the caller's institution",
              tag="patients", body=PatientIn, response=PatientOut, status=201)
async def create_patient(req: ApiRequest) -> PatientOut:
    async with req.db.write() as session:
        return await patients.register(session, req.settings.secret_key, req.user, req.body,
                                       req.ip)


@router.route("GET", "/api/patients", summary="Patients registered at the caller's "
              "institution, newest first, optionally matching a name, phone or masked ID",
              tag="patients", query=PatientsQuery, response=list[PatientOut])
async def list_patients(req: ApiRequest) -> list[PatientOut]:
    async with req.db.read() as session:
        return await patients.search(session, req.user, req.query, req.ip)


@router.route("GET", "/api/patients/{id}", summary="A patient of the caller's institution, or "
              "one shared through a consultation", tag="patients", response=PatientOut)
async def get_patient(req: ApiRequest) -> PatientOut:
    async with req.db.read() as session:
        return await patients.read(session, req.user, req.path_id(), req.ip)
