"""Teaching cases: a de-identified copy (PS3.15 basic profile) of a study shared with a
consultation, owned by the requesting user's institution."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import select

from yilian.dicom import keys as dicom_keys
from yilian.dicom.deid import Deidentifier
from yilian.dicom.models import DicomInstance, DicomStudy
from yilian.server.core import audit
from yilian.server.core.api import ApiRequest, ApiRouter
from yilian.server.core.errors import NotFound, ValidationFailed
from yilian.server.core.schemas import Input, Uid

router = ApiRouter()


class TeachingCopyIn(Input):
    study_uid: Uid
    retain_dates: bool = False


class TeachingCopyOut(BaseModel):
    study_uid: str
    source_study_uid: str
    instances: int
    retain_dates: bool


def _deidentify_files(paths: list[Path], retain_dates: bool, case_id: int, salt: bytes
                      ) -> list[bytes]:
    deid = Deidentifier(retain_dates=retain_dates, patient_id=f"TEACHING-{case_id}", salt=salt)
    return [deid.deidentify_bytes(p.read_bytes()) for p in paths]


def _salt(secret_key: str, institution_id: int, case_id: int, study_uid: str,
          retain_dates: bool) -> bytes:
    """The same copy asked for again gets the same new UIDs (so it is stored once), and the
    UIDs cannot be traced back without the install's secret."""
    message = f"teaching-copy:{institution_id}:{case_id}:{study_uid}:{retain_dates}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).digest()[:16]


@router.route("POST", "/api/consultations/{id}/teaching-copies", summary="Make a de-identified "
              "teaching copy of a study shared with the consultation", tag="consultations",
              body=TeachingCopyIn, response=TeachingCopyOut, status=201)
async def teaching_copy(req: ApiRequest) -> TeachingCopyOut:
    body: TeachingCopyIn = req.body
    case_id = req.path_id()
    shared = req.request.app[dicom_keys.DICOM_ACCESS].shared
    async with req.db.read() as session:
        patient_id = await shared.case_study_patient(session, req.user, case_id, body.study_uid)
        rows = (await session.execute(
            select(DicomInstance.path).join(DicomStudy, DicomStudy.id == DicomInstance.study_ref)
            .where(DicomStudy.study_uid == body.study_uid))).scalars().all()
    if not rows:
        raise NotFound(f"study {body.study_uid} is not shared with consultation {case_id}",
                       code="study_not_found")
    storage = req.request.app[dicom_keys.DICOM_STORAGE]
    try:
        salt = _salt(req.settings.secret_key, req.user.institution_id, case_id, body.study_uid,
                     body.retain_dates)
        files = await asyncio.to_thread(_deidentify_files, [storage.path_of(r) for r in rows],
                                        body.retain_dates, case_id, salt)
    except ValueError as exc:
        raise ValidationFailed(f"the study cannot be de-identified: {exc}") from None
    outcomes = await storage.ingest(files, req.user.institution_id, source="teaching",
                                    user_id=req.user.id, ip=req.ip)
    stored = [o for o in outcomes if o.ok]
    if not stored:
        raise ValidationFailed("no instance of the study could be stored de-identified",
                               details={"reasons": sorted({o.message for o in outcomes})})
    await req.db.log_audit([audit.entry(
        req.user, "teaching_copy", "study", body.study_uid, patient_id=patient_id, ip=req.ip,
        detail={"copy": stored[0].study_uid, "consultation_id": case_id})])
    return TeachingCopyOut(study_uid=stored[0].study_uid, source_study_uid=body.study_uid,
                           instances=len(stored), retain_dates=body.retain_dates)
