"""Sharing a study with a consultation makes it visible to that case's people only; the demo
loads images attached to consultations; every image access is audited."""

from __future__ import annotations

import io

import pydicom
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from tests.conftest import Api
from tests.dicom.conftest import dget, stow
from yilian.server.core import keys
from yilian.server.core.auth import hash_password
from yilian.server.core.db import Database
from yilian.server.core.models import AuditEntry, User


async def _consultation(api: Api, question_start: str) -> dict:
    status, items = await api.get("/api/consultations")
    assert status == 200
    return next(c for c in items if c["question"].startswith(question_start))


async def test_sharing_grants_access_to_participants(api: Api, server: TestServer,
                                                     ct_files: list[bytes]) -> None:
    township, expert = await api.login("township"), await api.login("expert")
    # a specialist of the chain who is no participant (not the county doctor: the demo refers
    # this post-MI patient up to Dianbai with the consultation, so Dianbai reads its studies)
    outsider, guilin = await api.login("gdph_radiology"), await api.login("guilin_doctor")
    study = pydicom.dcmread(io.BytesIO(ct_files[0])).StudyInstanceUID
    assert (await stow(township, ct_files))[0] == 200
    meta = f"/dicomweb/studies/{study}/metadata"
    assert (await dget(expert, meta))[0] == 404

    case = await _consultation(township, "Post-MI patient")
    status, body = await guilin.post(f"/api/consultations/{case['id']}/studies",
                                     {"study_uid": study})
    assert status == 404
    status, body = await township.post(f"/api/consultations/{case['id']}/studies",
                                       {"study_uid": "1.2.3.4.5"})
    assert status == 404 and body["error"]["code"] == "study_not_found"
    status, body = await township.post(f"/api/consultations/{case['id']}/studies",
                                       {"study_uid": study})
    assert status == 200 and study in body["study_uids"]

    status, docs = await dget(expert, meta)
    assert status == 200 and len(docs) == 4
    status, found = await dget(expert, "/dicomweb/studies", params={"PatientID": "T-1"})
    assert status == 200 and len(found) == 1
    for user in (outsider, guilin):
        assert (await dget(user, meta))[0] == 404
        status, found = await dget(user, "/dicomweb/studies", params={"PatientID": "T-1"})
        assert found == []
    await server.app[keys.AUDIT].flush()
    async with server.app[keys.DATABASE].read() as session:
        rows = (await session.execute(select(AuditEntry.action).where(
            AuditEntry.user_id == expert.user["id"], AuditEntry.resource_id == study))
        ).scalars().all()
    assert "dicom_metadata" in rows


async def test_demo_images_are_attached(api: Api) -> None:
    expert = await api.login("expert")
    case = await _consultation(expert, "Post-MI patient")
    assert len(case["study_uids"]) == 2
    status, studies = await dget(expert, "/dicomweb/studies",
                                 params={"StudyInstanceUID": ",".join(case["study_uids"])})
    assert status == 200
    assert sorted(s["00080061"]["Value"][0] for s in studies) == ["CT", "SM"]
    township = await api.login("township")
    status, dr = await dget(township, "/dicomweb/studies", params={"ModalitiesInStudy": "DX"})
    assert status == 200 and len(dr) == 1
    status, img = await dget(township, dr[0]["00081190"]["Value"][0].split(
        "/dicomweb", 1)[1].join(("/dicomweb", "/thumbnail")))
    assert status == 200 and img[:2] == b"\xff\xd8"


async def test_teaching_copy_is_deidentified(api: Api) -> None:
    expert = await api.login("expert")
    case = await _consultation(expert, "Post-MI patient")
    ct_uid = case["study_uids"][0]
    status, body = await expert.post(f"/api/consultations/{case['id']}/teaching-copies",
                                     {"study_uid": ct_uid})
    assert status == 201, body
    assert body["source_study_uid"] == ct_uid and body["study_uid"] != ct_uid
    status, docs = await dget(expert, f"/dicomweb/studies/{body['study_uid']}/metadata")
    assert status == 200 and len(docs) == body["instances"]
    ds = pydicom.Dataset.from_json(docs[0])
    assert ds.PatientIdentityRemoved == "YES" and ds.PatientID == f"TEACHING-{case['id']}"
    assert "PatientBirthDate" not in ds or not ds.PatientBirthDate
    status, body = await expert.post(f"/api/consultations/{case['id']}/teaching-copies",
                                     {"study_uid": "1.2.3"})
    assert status == 404
    guilin = await api.login("guilin_doctor")
    status, _ = await guilin.post(f"/api/consultations/{case['id']}/teaching-copies",
                                  {"study_uid": ct_uid})
    assert status == 404


async def test_a_teaching_copy_is_made_once_and_only_by_participants(api: Api, settings
                                                                   ) -> None:
    expert = await api.login("expert")
    case = await _consultation(expert, "Post-MI patient")
    ct_uid = case["study_uids"][0]
    path = f"/api/consultations/{case['id']}/teaching-copies"
    status, first = await expert.post(path, {"study_uid": ct_uid})
    assert status == 201, first
    status, again = await expert.post(path, {"study_uid": ct_uid})
    assert status == 201 and again["study_uid"] == first["study_uid"]
    status, docs = await dget(expert, f"/dicomweb/studies/{first['study_uid']}/metadata")
    assert status == 200 and len(docs) == first["instances"]  # not twice as many
    # A colleague at the requesting township centre sees the case but takes no part in it.
    db = Database(settings.resolved_database_url)
    async with db.write() as session:
        requester = await session.get(User, case["requester_id"])
        assert requester is not None
        session.add(User(username="shalang_nurse_doctor", display_name="Dr. Colleague",
                         password_hash=hash_password("colleague-pass"), role="township_doctor",
                         institution_id=requester.institution_id, specialties=[]))
    await db.close()
    colleague = await api.login("shalang_nurse_doctor", "colleague-pass")
    status, seen = await colleague.get(f"/api/consultations/{case['id']}")
    assert status == 200
    status, body = await colleague.post(path, {"study_uid": ct_uid})
    assert status == 403 and body["error"]["code"] == "forbidden"
