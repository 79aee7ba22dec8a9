"""A photo of an ECG paper strip stored as a DICOM Secondary Capture image (modality ECG, JPEG
Baseline), for the township clinic whose ECG machine prints on paper and exports nothing.

``POST /dicomweb/ecg-photos`` (a Yilian addition, see docs/dicom.md) takes a
multipart/form-data body: ``photo`` (the JPEG), ``taken_at`` (ISO 8601 with offset: it feeds
the first-contact-to-ECG interval) and either ``study`` (a study this institution holds: the
photo joins it, under its patient) or the patient (``patient_id``, ``patient_name``, optional
``patient_sex``, ``patient_birth_date``). The instance is built here and stored through the
same parse/store/index path as STOW-RS, and the answer is STOW-RS's.

Why not STOW-RS's own way (a ``application/dicom+json`` metadata part with the JPEG as bulk
data): it needs a second upload pipeline beside the streaming one for DICOM parts (the JSON
model turned into a dataset, bulk data parts matched to their URIs) to serve one client, our
own page; a form post is what a phone's browser sends, and the dataset is built once, here.
"""

from __future__ import annotations

import asyncio
import io
from datetime import datetime
from typing import Any

from aiohttp import BodyPartReader, web
from PIL import Image, UnidentifiedImageError
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, generate_uid

from yilian.dicom import common
from yilian.dicom import keys as dicom_keys
from yilian.dicom.stow import stow_response
from yilian.dicom.synth import new_instance, to_bytes
from yilian.server.core import keys
from yilian.server.core.access import require_clinical
from yilian.server.core.auth import authenticate
from yilian.server.core.errors import BadRequest, PayloadTooLarge

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
#: A phone's photo is a few megabytes.
MAX_PHOTO_BYTES = 20 * 1024 * 1024
_FIELDS = ("taken_at", "study", "patient_id", "patient_name", "patient_sex",
           "patient_birth_date")


def _bad(message: str, **details: Any) -> BadRequest:
    return BadRequest(message, code="invalid_ecg_photo", details=details or None)


def baseline_jpeg(data: bytes) -> tuple[bytes, Image.Image]:
    """The photo as a baseline 8-bit JPEG (greyscale or YCbCr) with its decoded header; a
    progressive or CMYK one is re-encoded (JPEG Baseline allows neither)."""
    try:
        img: Image.Image = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise _bad(f"the photo is not an image that can be read: {exc}") from None
    if img.format != "JPEG":
        raise _bad(f"the photo must be a JPEG, not {img.format}", format=img.format)
    if img.info.get("progressive") or img.info.get("progression") or img.mode not in ("L", "RGB"):
        img = img.convert("L" if img.mode in ("L", "1", "I;16") else "RGB")
        out = io.BytesIO()
        img.save(out, "JPEG", quality=92, progressive=False)
        data = out.getvalue()
    return data, img


def photo_instance(jpeg: bytes, img: Image.Image, *, taken_at: datetime, study_uid: str,
                   patient: dict[str, str]) -> bytes:
    """A Secondary Capture instance holding the photo, in a new ECG series of the study."""
    ds = new_instance(SECONDARY_CAPTURE, JPEGBaseline8Bit, study_uid, generate_uid())
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = patient.get("name", "")
    ds.PatientID = patient.get("id", "")
    ds.PatientBirthDate = patient.get("birth_date", "")
    ds.PatientSex = patient.get("sex", "")
    offset = taken_at.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    day, time = taken_at.strftime("%Y%m%d"), taken_at.strftime("%H%M%S")
    ds.AcquisitionDateTime = day + time
    ds.TimezoneOffsetFromUTC = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}" \
                               f"{abs(minutes) % 60:02d}"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = day
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = time
    ds.Modality = "ECG"
    ds.ConversionType = "SI"  # scanned image: a picture of a printed page
    ds.SeriesDescription = "ECG paper strip (photo)"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SamplesPerPixel = 1 if img.mode == "L" else 3
    ds.PhotometricInterpretation = "MONOCHROME2" if img.mode == "L" else "YBR_FULL_422"
    if img.mode != "L":
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = img.height, img.width
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"
    return to_bytes(ds)


def _taken_at(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _bad("taken_at must be an ISO 8601 date and time", field="taken_at") from None
    if when.tzinfo is None:
        raise _bad("taken_at must include its offset from UTC", field="taken_at")
    return when


_MAX_FIELD_BYTES = 4096


async def _read_capped(part: BodyPartReader, limit: int, what: str) -> bytes:
    """A part's bytes, refused with 413 as soon as they pass ``limit`` (never all held)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"{what} exceeds {limit} bytes", details={"limit": limit})
        chunks.append(chunk)
    return b"".join(chunks)


async def _form(request: web.Request) -> tuple[bytes, dict[str, str]]:
    if not request.content_type.startswith("multipart/form-data"):
        raise _bad("send multipart/form-data with a photo field",
                   content_type=request.content_type)
    reader = await request.multipart()
    photo: bytes | None = None
    fields: dict[str, str] = {}
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or not part.name:
            continue
        if part.name == "photo":
            photo = await _read_capped(part, MAX_PHOTO_BYTES, "the photo")
        elif part.name in _FIELDS:
            raw = await _read_capped(part, _MAX_FIELD_BYTES, f"the field {part.name}")
            fields[part.name] = raw.decode(part.get_charset("utf-8"), "replace").strip()[:200]
    if not photo:
        raise _bad("the form has no photo", field="photo")
    return photo, fields


async def post_photo(request: web.Request) -> web.Response:
    """Store a photographed ECG strip as a Secondary Capture instance (modality ECG)."""
    user = await authenticate(request)
    require_clinical(user, "upload images")
    photo, fields = await _form(request)
    taken_at = _taken_at(fields.get("taken_at", ""))
    study_uid = fields.get("study") or ""
    if study_uid:  # joins a study this user may read, under its patient
        async with request.app[keys.DATABASE].read() as session:
            study = await request.app[dicom_keys.DICOM_ACCESS].get_study(session, user,
                                                                         study_uid)
        patient = {"id": study.patient_id, "name": study.patient_name,
                   "birth_date": study.patient_birth_date, "sex": study.patient_sex}
    else:
        if not fields.get("patient_id") or not fields.get("patient_name"):
            raise _bad("name the patient (patient_id, patient_name) or the study",
                       field="patient_id")
        study_uid = generate_uid()
        patient = {"id": fields["patient_id"], "name": fields["patient_name"],
                   "birth_date": fields.get("patient_birth_date", ""),
                   "sex": fields.get("patient_sex", "")}
    data = await asyncio.to_thread(_build, photo, taken_at, study_uid, patient)
    outcomes = await request.app[dicom_keys.DICOM_STORAGE].ingest(
        [data], user.institution_id, source="ecg_photo", user_id=user.id,
        expected_study=study_uid, ip=request.remote)
    status, doc = stow_response(outcomes, common.base_url(request))
    return common.json_response(doc, status)


def _build(photo: bytes, taken_at: datetime, study_uid: str, patient: dict[str, str]) -> bytes:
    jpeg, img = baseline_jpeg(photo)
    return photo_instance(jpeg, img, taken_at=taken_at, study_uid=study_uid, patient=patient)
