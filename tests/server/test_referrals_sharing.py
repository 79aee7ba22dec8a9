"""What a referral shares, and with whom: an unrelated institution sees nothing of it (404 on
the referral, its patient and its studies); the receiving team sees the patient and exactly
the studies and consultations shared, read-only, and nothing else of the referring site."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, select

from tests.conftest import Api
from tests.server.helpers import new_patient
from tests.server.referral_helpers import DIANBAI, institutions
from yilian.server.clinic.models import ReferralConsultation
from yilian.server.core import keys
from yilian.server.core.audit import AuditEntry
from yilian.server.core.models import User

pytestmark = pytest.mark.asyncio


async def _consultation(client: Api, status: str) -> dict[str, Any]:
    got, rows = await client.get("/api/consultations", params={"status": status})
    assert got == 200
    return next(c for c in rows if c["study_uids"] or status == "completed")


async def _unshare(api: Api, consultation_id: int) -> None:
    """Take the consultation out of the referrals the demo shares it with (the demo's Liang
    Jinlong is on his way to Dianbai with it), so the test starts from nothing shared."""
    async with api.server.app[keys.DATABASE].write() as session:
        await session.execute(delete(ReferralConsultation).where(
            ReferralConsultation.consultation_id == consultation_id))


async def _study(client: Api, uid: str) -> int:
    status, _ = await client.get(f"/dicomweb/studies/{uid}/metadata")
    return status


async def test_receiving_team_sees_exactly_what_was_shared(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    radiology = await api.login("county_radiology")  # the receiving institution too
    outsider = await api.login("guilin_neurosurgery")
    inst = await institutions(township)
    live = await _consultation(township, "in_progress")
    await _unshare(api, live["id"])
    shared_uid, other_uid = live["study_uids"][0], live["study_uids"][1]
    status, others = await township.get("/api/consultations")
    other_patient_case = next(c for c in others if c["patient_id"] != live["patient_id"])
    unrelated = await new_patient(township, "Xu Lan (徐兰)")

    status, r = await township.post("/api/referrals", {
        "patient_id": live["patient_id"], "direction": "up",
        "to_institution_id": inst[DIANBAI]["id"], "reason": "Worsening heart failure",
        "study_uids": [shared_uid]})
    assert status == 201, r
    assert r["study_uids"] == [shared_uid] and r["consultations"] == []
    rid = r["id"]

    for reader in (county, radiology):
        assert (await reader.get(f"/api/referrals/{rid}"))[0] == 200
        assert (await reader.get(f"/api/patients/{live['patient_id']}"))[0] == 200
        assert await _study(reader, shared_uid) == 200
        assert await _study(reader, other_uid) == 404
        assert (await reader.get(f"/api/consultations/{live['id']}"))[0] == 404
        assert (await reader.get(f"/api/patients/{unrelated['id']}"))[0] == 404
    assert (await outsider.get(f"/api/referrals/{rid}"))[0] == 404
    assert (await outsider.get(f"/api/patients/{live['patient_id']}"))[0] == 404
    assert await _study(outsider, shared_uid) == 404

    # The referring team shares the consultation: it, its studies become readable (only).
    status, err = await county.post(f"/api/referrals/{rid}/share",
                                    {"consultation_ids": [live["id"]]})
    assert status == 403
    status, r = await township.post(f"/api/referrals/{rid}/share",
                                    {"consultation_ids": [live["id"]]})
    assert status == 200, r
    assert r["consultations"] == [{"id": live["id"], "kind": live["kind"],
                                   "question": live["question"], "report_status": "none"}]
    status, seen = await county.get(f"/api/consultations/{live['id']}")
    assert status == 200 and seen["id"] == live["id"]
    assert seen["chat"] == []  # the report and studies are shared, not the video room's chat
    assert await _study(county, other_uid) == 200
    status, rows = await county.get("/api/consultations")
    assert live["id"] not in {c["id"] for c in rows}  # not in their working list
    for action, body in (("complete", None), ("cancel", {"reason": "x"})):
        status, err = await county.post(f"/api/consultations/{live['id']}/{action}", body)
        assert status in (403, 404), (action, err)
    status, err = await county.post(f"/api/consultations/{live['id']}/report", {
        "findings": "x", "impression": "y", "recommendations": "z"})
    assert status in (403, 404)
    assert (await outsider.get(f"/api/consultations/{live['id']}"))[0] == 404
    assert await _study(outsider, other_uid) == 404

    # Sharing checks what is shared: another patient's consultation, unknown studies.
    for body, code in (({"consultation_ids": [other_patient_case["id"]]}, "wrong_patient"),
                       ({"study_uids": ["1.2.3.999"]}, "study_not_found"),
                       ({}, "validation_error"), ({"study_uids": "1.2"}, "validation_error")):
        status, err = await township.post(f"/api/referrals/{rid}/share", body)
        assert err["error"]["code"] == code, (body, err)
    status, r = await county.get(f"/api/referrals/{rid}")
    assert len(r["consultations"]) == 1 and r["study_uids"] == [shared_uid]

    # What the county reads about this patient is not passed on with another one of theirs.
    mine = await new_patient(county, "He Ping (何平)")
    status, targets = await county.get("/api/referral-targets", params={"direction": "up"})
    status, err = await county.post("/api/referrals", {
        "patient_id": mine["id"], "direction": "up", "to_institution_id": targets[0]["id"],
        "reason": "x", "study_uids": [shared_uid]})
    assert status == 422 and err["error"]["code"] == "wrong_patient", err
    assert (await county.get("/api/referrals", params={"patient_id": mine["id"]}))[1] == []

    await township.post(f"/api/referrals/{rid}/cancel", {"reason": "Treated locally"})
    status, err = await township.post(f"/api/referrals/{rid}/share",
                                      {"study_uids": [other_uid]})
    assert status == 409

    await api.flush_audit()
    db = api.server.app[keys.DATABASE]
    async with db.read() as session:
        actions = set((await session.execute(select(AuditEntry.action).where(
            AuditEntry.resource_type == "referral",
            AuditEntry.resource_id == str(rid)))).scalars())
    assert {"create", "read", "share", "cancel"} <= actions


async def test_signed_report_of_a_shared_consultation_is_readable(api: Api) -> None:
    village, county = await api.login("village"), await api.login("county")
    inst = await institutions(village)
    done = await _consultation(village, "completed")
    status, r = await village.post("/api/referrals", {
        "patient_id": done["patient_id"], "direction": "up",
        "to_institution_id": inst[DIANBAI]["id"], "reason": "BP still high",
        "consultation_id": done["id"]})
    assert status == 201, r
    assert r["consultation_id"] == done["id"]
    assert r["consultations"][0]["report_status"] == "signed"
    status, report = await county.get(f"/api/consultations/{done['id']}/report")
    assert status == 200 and report["current"]["signed"] is True
    status, err = await county.post(f"/api/consultations/{done['id']}/report/sign")
    assert status in (403, 404, 409)


async def test_referring_another_patients_consultation_is_refused(api: Api) -> None:
    township = await api.login("township")
    inst = await institutions(township)
    live = await _consultation(township, "in_progress")
    status, rows = await township.get("/api/consultations")
    other = next(c for c in rows if c["patient_id"] != live["patient_id"])
    status, err = await township.post("/api/referrals", {
        "patient_id": live["patient_id"], "direction": "up",
        "to_institution_id": inst[DIANBAI]["id"], "reason": "x",
        "consultation_ids": [other["id"]]})
    assert status == 422 and err["error"]["code"] == "wrong_patient"
    guilin = await api.login("guilin_doctor")
    theirs = await new_patient(guilin, "Mo Hua (莫华)")
    status, case = await guilin.post("/api/consultations", {
        "patient_id": theirs["id"], "kind": "imaging", "question": "CT head, please",
        "specialty": "radiology", "target_institution_id": guilin.user["institution_id"]})
    assert status == 201, case
    rows = [case]
    status, err = await township.post("/api/referrals", {
        "patient_id": live["patient_id"], "direction": "up",
        "to_institution_id": inst[DIANBAI]["id"], "reason": "x",
        "consultation_id": rows[0]["id"]})
    assert status == 404


async def test_a_study_is_not_attached_to_another_patients_consultation(api: Api) -> None:
    """An expert can read a study shared with one consultation; attaching it to a consultation
    about another patient (by mistake or not) is refused, as it is for referrals. The site that
    stored the study still may (its own images, its own filing)."""
    township = await api.login("township")
    live = await _consultation(township, "in_progress")
    uid = live["study_uids"][0]
    async with api.server.app[keys.DATABASE].read() as session:
        username = await session.scalar(select(User.username).where(User.id == live["expert_id"]))
    expert = await api.login(username)
    status, theirs = await expert.get("/api/consultations")
    assert status == 200
    other = next((c for c in theirs if c["patient_id"] != live["patient_id"]
                  and c["status"] not in ("completed", "cancelled", "declined", "no_show")), None)
    if other is None:  # the demo gives this expert one open case only: request another
        patient = await new_patient(township, "Wen Qing (温青)")
        status, other = await township.post("/api/consultations", {
            "patient_id": patient["id"], "kind": "imaging", "question": "Chest CT, please",
            "expert_id": expert.user["id"]})
        assert status == 201, other
    assert await _study(expert, uid) == 200
    status, err = await expert.post(f"/api/consultations/{other['id']}/studies",
                                    {"study_uid": uid})
    assert status == 422 and err["error"]["code"] == "wrong_patient", err
    status, case = await expert.get(f"/api/consultations/{other['id']}")
    assert uid not in case["study_uids"]
    status, err = await township.post("/api/consultations", {
        "patient_id": (await new_patient(township, "Lu Ping (陆平)"))["id"], "kind": "imaging",
        "question": "Second opinion", "expert_id": expert.user["id"], "study_uids": [uid]})
    assert status == 201, err  # the storing site files its own study
