"""A photo of a paper ECG strip posted to /dicomweb/ecg-photos becomes a Secondary Capture
instance (modality ECG, JPEG Baseline) through the ordinary store: found by QIDO, rendered by
the viewer, its time feeding ecg_taken_at; what is not a usable photo is refused (400), nothing
stored."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer
from PIL import Image
from sqlalchemy import func, select

from tests.conftest import Api
from tests.dicom.conftest import dget, stored, stow
from yilian.dicom.models import DicomInstance
from yilian.dicom.synth import ecg_12lead
from yilian.server.clinic import keys as clinic_keys
from yilian.server.core import keys

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def _strip_photo(fmt: str = "JPEG", **save: Any) -> bytes:
    """A pink-gridded strip with a trace, as a phone would photograph it."""
    h, w = 300, 900
    img = np.full((h, w, 3), (255, 240, 240), np.uint8)
    img[::10, :] = img[:, ::10] = (230, 140, 140)
    x = np.arange(w)
    y = (150 - 60 * np.exp(-((x % 180) - 90) ** 2 / 20.0)).astype(int)
    img[y, x] = (0, 0, 0)
    out = io.BytesIO()
    Image.fromarray(img).save(out, fmt, **save)
    return out.getvalue()


async def _post(api: Api, photo: bytes | None, **fields: str) -> tuple[int, Any]:
    form = aiohttp.FormData()
    for k, v in fields.items():
        form.add_field(k, v)
    if photo is not None:
        form.add_field("photo", photo, filename="strip.jpg", content_type="image/jpeg")
    async with api.http.post(api.url("/dicomweb/ecg-photos"), data=form,
                             headers=api.headers()) as r:
        return r.status, await r.json(content_type=None)


async def test_photo_joins_the_patients_study(api: Api, server: TestServer) -> None:
    township = await api.login("township")
    data = ecg_12lead(patient={"id": "PH-1", "name": "Zhao^Lei"},
                      acquired=datetime(2024, 3, 5, 8, 12))
    status, doc = await stow(township, [data])
    study = stored(doc)[0]["00081190"]["Value"][0].split("/studies/")[1].split("/")[0]

    status, doc = await _post(township, _strip_photo(progressive=True),
                              taken_at="2024-03-05T07:58:00+08:00", study=study)
    assert status == 200, doc
    url = stored(doc)[0]["00081190"]["Value"][0].split("/dicomweb", 1)[1]
    status, meta = await dget(township, f"/dicomweb{url}/metadata")
    assert status == 200
    (m,) = meta
    assert m["00080060"]["Value"] == ["ECG"] and m["00100020"]["Value"] == ["PH-1"]
    assert m["00080016"]["Value"] == ["1.2.840.10008.5.1.4.1.1.7"]
    assert (m["00280010"]["Value"], m["00280011"]["Value"]) == ([300], [900])
    assert m["00280004"]["Value"] == ["YBR_FULL_422"]
    status, body = await dget(township, f"/dicomweb{url}/rendered")
    assert status == 200 and body[:2] == b"\xff\xd8"
    async with server.app[keys.DATABASE].read() as session:
        ts = await session.scalar(select(DicomInstance.transfer_syntax).where(
            DicomInstance.sop_uid == m["00080018"]["Value"][0]))
        taken = await server.app[clinic_keys.STUDY_CATALOG].ecg_taken_at(session, study)
    assert ts == JPEG_BASELINE
    assert taken == datetime(2024, 3, 4, 23, 58, tzinfo=UTC)  # the photo, earlier than the cart
    status, series = await dget(township, f"/dicomweb/studies/{study}/series")
    assert sorted(s["00080060"]["Value"][0] for s in series) == ["ECG", "ECG"]


async def test_photo_of_a_new_patient(api: Api) -> None:
    township = await api.login("township")
    status, doc = await _post(township, _strip_photo("JPEG", quality=85),
                              taken_at="2024-03-05T09:30:00+08:00", patient_id="PH-2",
                              patient_name="Sun^Mei", patient_sex="F")
    assert status == 200, doc
    status, found = await dget(township, "/dicomweb/studies", params={"PatientID": "PH-2"})
    assert status == 200 and found[0]["00080061"]["Value"] == ["ECG"]


@pytest.mark.parametrize(("photo", "fields", "what"), [
    (_strip_photo("PNG"), {"patient_id": "X", "patient_name": "X"}, "must be a JPEG"),
    (b"not an image at all", {"patient_id": "X", "patient_name": "X"}, "not an image"),
    (None, {"patient_id": "X", "patient_name": "X"}, "photo"),
    (_strip_photo(), {"patient_id": "X"}, "name the patient"),
    (_strip_photo(), {"patient_id": "X", "patient_name": "X", "taken_at": "yesterday"},
     "ISO 8601"),
    (_strip_photo(), {"patient_id": "X", "patient_name": "X", "taken_at": "2024-03-05T09:30"},
     "offset"),
])
async def test_bad_photos_refused(api: Api, server: TestServer, photo: bytes | None,
                                  fields: dict[str, str], what: str) -> None:
    township = await api.login("township")
    fields = {"taken_at": "2024-03-05T09:30:00+08:00", **fields}
    status, body = await _post(township, photo, **fields)
    assert status == 400 and body["error"]["code"] == "invalid_ecg_photo", body
    assert what in body["error"]["message"]
    async with server.app[keys.DATABASE].read() as session:
        assert await session.scalar(select(func.count()).select_from(DicomInstance)
                                    .where(DicomInstance.received_from == "ecg_photo")) == 0


async def test_photo_into_a_study_one_may_not_see(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    status, doc = await stow(township, [ecg_12lead(patient={"id": "PH-3", "name": "A^B"})])
    study = stored(doc)[0]["00081190"]["Value"][0].split("/studies/")[1].split("/")[0]
    status, body = await _post(county, _strip_photo(), taken_at="2024-03-05T09:30:00+08:00",
                               study=study)
    assert status == 404 and body["error"]["code"] == "study_not_found"
    status, body = await _post(await api.login("admin"), _strip_photo(),
                               taken_at="2024-03-05T09:30:00+08:00", study=study)
    assert status == 403
