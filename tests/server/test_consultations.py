"""The consultation workflow end to end over HTTP, with its rules and audit trail."""

from __future__ import annotations

from sqlalchemy import select

from tests.server.helpers import book, free_slot, new_patient
from yilian.server.clinic.consultations import expire_overdue
from yilian.server.clinic.models import Consultation
from yilian.server.core.db import Database, utcnow
from yilian.server.core.models import AuditEntry

REPORT = {"findings": "ST depression V4-V6", "impression": "Stable angina",
          "recommendations": "Aspirin, statin; refer for exercise test"}


async def test_book_accept_run_sign_complete(api, settings) -> None:
    village, expert = await api.login("village"), await api.login("expert")
    eid = expert.user["id"]
    c = await book(village, eid)
    assert c["status"] == "requested" and c["slot"]["status"] == "booked"
    assert c["requester_id"] == village.user["id"] and c["expert_id"] == eid
    cid = c["id"]

    status, queue = await expert.get("/api/consultations", params={"role": "expert",
                                                                  "status": "requested"})
    assert status == 200 and cid in [x["id"] for x in queue]
    status, body = await expert.post(f"/api/consultations/{cid}/accept", {})
    assert status == 200 and body["status"] == "accepted", body
    status, body = await village.post(f"/api/consultations/{cid}/start")
    assert status == 200 and body["status"] == "in_progress"

    status, body = await expert.post(f"/api/consultations/{cid}/complete")
    assert status == 409 and body["error"]["code"] == "report_not_signed"
    status, body = await village.post(f"/api/consultations/{cid}/report", REPORT)
    assert status == 403
    status, body = await expert.post(f"/api/consultations/{cid}/report", REPORT)
    assert status == 200 and body["current"]["version"] == 1 and not body["current"]["signed"]
    status, body = await village.get(f"/api/consultations/{cid}/report")
    assert status == 404  # an unsigned draft is the expert's own
    status, body = await expert.post(f"/api/consultations/{cid}/report/sign")
    assert status == 200 and body["current"]["signed"]
    status, body = await expert.post(f"/api/consultations/{cid}/report/sign")
    assert status == 409 and body["error"]["code"] == "nothing_to_sign"
    status, body = await expert.post(f"/api/consultations/{cid}/complete")
    assert status == 200 and body["status"] == "completed" and body["report_status"] == "signed"

    # A correction is a new version; the signed one is kept unchanged.
    fixed = REPORT | {"impression": "Stable angina, CCS class II"}
    status, body = await expert.post(f"/api/consultations/{cid}/report", fixed)
    assert status == 200 and body["current"]["version"] == 2
    assert body["versions"][0]["impression"] == "Stable angina" and body["versions"][0]["signed"]
    status, body = await village.get(f"/api/consultations/{cid}/report")
    assert status == 200 and [v["version"] for v in body["versions"]] == [1]
    assert body["current"]["impression"] == "Stable angina"
    await expert.post(f"/api/consultations/{cid}/report/sign")
    status, body = await village.get(f"/api/consultations/{cid}/report")
    assert status == 200 and [v["signed"] for v in body["versions"]] == [True, True]

    status, body = await village.get(f"/api/consultations/{cid}")
    assert [h["to_status"] for h in body["history"]] == [
        "requested", "accepted", "in_progress", "completed"]
    assert [h["actor_id"] for h in body["history"]] == [
        village.user["id"], eid, village.user["id"], eid]
    assert body["requester_name"] == village.user["display_name"]
    assert body["expert_name"] == expert.user["display_name"]
    assert [h["actor_name"] for h in body["history"]] == [
        village.user["display_name"], expert.user["display_name"]] * 2

    await village.flush_audit()
    db = Database(settings.resolved_database_url)
    async with db.read() as session:
        actions = (await session.execute(
            select(AuditEntry.action).where(AuditEntry.resource_type == "consultation",
                                            AuditEntry.resource_id == str(cid))
            .order_by(AuditEntry.id))).scalars().all()
    await db.close()
    transitions = [a for a in actions if a in ("create", "accept", "start", "complete")]
    assert transitions == ["create", "accept", "start", "complete"]
    assert {"write_report", "sign_report", "read_report", "read"} <= set(actions)


async def test_illegal_transitions_are_409(api) -> None:
    village, expert = await api.login("village"), await api.login("expert")
    c = await book(village, expert.user["id"])
    cid = c["id"]
    status, body = await expert.post(f"/api/consultations/{cid}/complete")
    assert status == 409 and body["error"]["code"] == "invalid_transition"
    assert 'state "requested"' in body["error"]["message"]
    status, body = await village.post(f"/api/consultations/{cid}/start")
    assert status == 409 and body["error"]["code"] == "invalid_transition"
    status, body = await village.post(f"/api/consultations/{cid}/cancel", {"reason": "better"})
    assert status == 200 and body["status"] == "cancelled" and body["reason"] == "better"
    status, body = await expert.post(f"/api/consultations/{cid}/accept", {})
    assert status == 409 and body["error"]["code"] == "invalid_transition"
    # the slot went back to the pool
    slot = c["slot"]
    status, slots = await village.get(f"/api/experts/{expert.user['id']}/slots",
                                      params={"from": slot["start"], "to": slot["end"]})
    assert slots[0]["status"] == "free"


async def test_decline_frees_slot_and_only_the_expert_may_decline(api) -> None:
    village, expert, county = [await api.login(u) for u in ("village", "expert", "county")]
    c = await book(village, expert.user["id"])
    status, body = await county.post(f"/api/consultations/{c['id']}/decline", {"reason": "x"})
    assert status == 404  # not his case: existence is not disclosed
    status, body = await village.post(f"/api/consultations/{c['id']}/decline", {"reason": "x"})
    assert status == 403
    status, body = await expert.post(f"/api/consultations/{c['id']}/decline",
                                     {"reason": "Not cardiology"})
    assert status == 200 and body["status"] == "declined" and body["reason"] == "Not cardiology"
    assert body["history"][-1]["note"] == "Not cardiology"


async def test_specialty_queue_is_taken_by_whoever_accepts(api) -> None:
    township = await api.login("township")
    radiologist = await api.login("gdph_radiology")
    cardiologist = await api.login("expert")
    patient = await new_patient(township)
    status, c = await township.post("/api/consultations", {
        "patient_id": patient["id"], "kind": "imaging", "urgency": "urgent",
        "question": "Opacity?", "specialty": "radiology",
        "target_institution_id": radiologist.user["institution_id"]})
    assert status == 201 and c["expert_id"] is None
    status, queue = await radiologist.get("/api/consultations", params={"role": "queue"})
    assert c["id"] in [x["id"] for x in queue]
    status, queue = await cardiologist.get("/api/consultations", params={"role": "queue"})
    assert c["id"] not in [x["id"] for x in queue]
    status, body = await cardiologist.post(f"/api/consultations/{c['id']}/accept", {})
    assert status == 404
    status, body = await radiologist.post(f"/api/consultations/{c['id']}/accept", {})
    assert status == 200 and body["expert_id"] == radiologist.user["id"]


async def test_video_accept_needs_a_slot_and_can_move_it(api) -> None:
    township = await api.login("township")
    expert = await api.login("expert")
    patient = await new_patient(township)
    status, c = await township.post("/api/consultations", {
        "patient_id": patient["id"], "kind": "video", "question": "q",
        "expert_id": expert.user["id"]})
    assert status == 201 and c["slot"] is None
    status, body = await expert.post(f"/api/consultations/{c['id']}/accept", {})
    assert status == 422 and body["error"]["code"] == "slot_required"
    slot = await free_slot(expert, expert.user["id"], 3)
    status, body = await expert.post(f"/api/consultations/{c['id']}/accept",
                                     {"slot_id": slot["id"]})
    assert status == 200 and body["slot"]["id"] == slot["id"]


async def test_expiry_of_unaccepted_requests(api, settings) -> None:
    village, expert = await api.login("village"), await api.login("expert")
    c = await book(village, expert.user["id"])
    db = Database(settings.resolved_database_url)
    async with db.write() as session:
        row = await session.get(Consultation, c["id"])
        row.deadline = utcnow()
    assert await expire_overdue(db) >= 1
    await db.close()
    status, body = await village.get(f"/api/consultations/{c['id']}")
    assert body["status"] == "expired" and body["history"][-1]["actor_id"] is None
    status, slots = await village.get(f"/api/experts/{expert.user['id']}/slots",
                                      params={"from": c["slot"]["start"], "to": c["slot"]["end"]})
    assert slots[0]["status"] == "free"


async def test_booked_slot_gives_409_slot_taken(api) -> None:
    village, township, expert = (await api.login("village"), await api.login("township"),
                                 await api.login("expert"))
    c = await book(village, expert.user["id"])
    patient = await new_patient(township)
    status, body = await township.post("/api/consultations", {
        "patient_id": patient["id"], "kind": "video", "question": "q",
        "expert_id": expert.user["id"], "slot_id": c["slot"]["id"]})
    assert status == 409 and body["error"]["code"] == "slot_taken"


async def test_demo_accounts_and_logout(api) -> None:
    for username in ("village", "township", "county", "expert", "coordinator", "admin",
                     "guilin_doctor"):
        client = await api.login(username)
        status, me = await client.get("/api/me")
        assert status == 200 and me["username"] == username
    status, body = await client.post("/api/auth/logout")
    assert status == 204
    status, body = await client.get("/api/me")
    assert status == 401 and body["error"]["code"] == "invalid_token"
    status, body = await api.post("/api/auth/login", {"username": "village", "password": "x"})
    assert status == 401 and body["error"]["code"] == "invalid_credentials"


async def test_login_is_rate_limited(api) -> None:
    """A name that is no account cannot be locked (there is no row): the rate limit per name
    (10 a minute) stops guessing there. Real accounts lock sooner (test_accounts_sessions)."""
    for _ in range(10):
        status, _ = await api.post("/api/auth/login", {"username": "nobody", "password": "bad"})
        assert status == 401
    status, body = await api.post("/api/auth/login",
                                  {"username": "nobody", "password": "yilian-demo"})
    assert status == 429 and body["error"]["code"] == "too_many_requests"
    assert body["error"]["details"]["scope"] == "account"


async def test_experts_search_prefers_own_alliance(api) -> None:
    guilin = await api.login("guilin_doctor")
    status, experts = await guilin.get("/api/experts", params={"specialty": "neurosurgery"})
    assert status == 200
    flags = [e["in_my_alliance"] for e in experts]
    assert flags == sorted(flags, reverse=True) and flags[0] and not flags[-1]
    assert all(len(e["next_free_slots"]) == 3 for e in experts)
    status, experts = await guilin.get("/api/experts", params={"specialty": "NOT valid"})
    assert status == 422


async def test_patient_national_id_is_masked_and_encrypted(api, settings) -> None:
    village = await api.login("village")
    patient = await new_patient(village)
    assert patient["national_id_masked"] == "440904********003X"
    db = Database(settings.resolved_database_url)
    from yilian.server.clinic.models import Patient
    from yilian.server.core.crypto import decrypt

    async with db.read() as session:
        row = await session.get(Patient, patient["id"])
        assert b"44090419600201003X" not in row.national_id_encrypted
        assert decrypt(settings.secret_key, row.national_id_encrypted) == "44090419600201003X"
    await db.close()
