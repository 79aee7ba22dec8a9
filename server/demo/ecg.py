"""The chest-pain case's first ECG: pydicom's 12-lead test waveform, re-identified as the demo
patient's, taken at the case's first-ECG time, and stored the way the demo's other studies are
(``Storage.ingest``, as sent by the township doctor)."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from yilian.dicom.store import Storage
from yilian.server.core.db import Database
from yilian.server.core.settings import Settings

ZONE = ZoneInfo("Asia/Shanghai")
SOURCE_FILE = "waveform_ecg.dcm"


@dataclass(frozen=True)
class EcgPlan:
    """What the ECG will be: decided with the case, stored after it is committed."""

    study_uid: str
    taken_at: datetime
    patient_name: str  # DICOM PN, e.g. "Zhang^Dehai"
    patient_id: str
    birth_date: str  # YYYYMMDD
    sex: str  # M | F
    institution_name: str
    institution_id: int
    user_id: int


def plan_ecg(**fields: object) -> EcgPlan:
    """A plan with a fresh Study Instance UID."""
    return EcgPlan(study_uid=generate_uid(), **fields)  # type: ignore[arg-type]


def ecg_file(plan: EcgPlan) -> bytes:
    """The test waveform with new UIDs, the demo patient and the case's acquisition time."""
    path = get_testdata_file(SOURCE_FILE)
    if path is None:
        raise RuntimeError(f"pydicom's test file {SOURCE_FILE} is not installed")
    ds = pydicom.dcmread(path)
    local = plan.taken_at.astimezone(ZONE)
    day, time = local.strftime("%Y%m%d"), local.strftime("%H%M%S")
    ds.StudyInstanceUID = plan.study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID = plan.patient_name, plan.patient_id
    ds.PatientBirthDate, ds.PatientSex = plan.birth_date, plan.sex
    ds.PatientAge = f"{local.year - int(plan.birth_date[:4]):03d}Y"
    for keyword in ("OtherPatientIDs", "PatientAddress", "PatientSize", "PatientWeight",
                    "AdmissionID", "CurrentPatientLocation", "PatientInstitutionResidence",
                    "VisitComments", "ReferringPhysicianName", "OperatorsName",
                    "NameOfPhysiciansReadingStudy", "RequestingPhysician", "DeviceSerialNumber"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.InstitutionName = plan.institution_name
    ds.StationName = "SHALANG_ECG"
    ds.StudyDescription = "12-lead ECG"
    ds.AccessionNumber = f"SL{local:%y}ECG{local:%m%d}"
    ds.StudyID = "1"
    ds.StudyDate = ds.ContentDate = ds.InstanceCreationDate = day
    ds.StudyTime = ds.ContentTime = ds.InstanceCreationTime = time
    ds.AcquisitionDateTime = day + time
    ds.TimezoneOffsetFromUTC = local.strftime("%z")
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


async def store_ecg(db: Database, settings: Settings, plan: EcgPlan) -> str:
    """Store the ECG as sent by the township doctor; its Study Instance UID."""
    data = await asyncio.to_thread(ecg_file, plan)
    storage = Storage(settings.data_dir / "dicom", db)
    try:
        outcomes = await storage.ingest([data], plan.institution_id, source="stow",
                                        user_id=plan.user_id)
    finally:
        storage.close()
    failed = [o.message for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"the demo ECG was refused: {failed}")
    return outcomes[0].study_uid
