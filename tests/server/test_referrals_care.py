"""Follow-ups of downward referrals at the receiving clinic, and the on-call rosters and
department heads the coordinators keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from tests.conftest import Api
from tests.server.referral_helpers import DIANBAI, department, institutions, refer_down
from yilian.server.clinic.models import FollowUp, OnCallShift
from yilian.server.core import keys

pytestmark = pytest.mark.asyncio


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


async def _follow_up(api: Api, follow_up_id: int) -> FollowUp:
    async with api.server.app[keys.DATABASE].read() as session:
        f = await session.get(FollowUp, follow_up_id)
        assert f is not None
        return f


async def test_follow_up_created_listed_once_accepted_and_completed(api: Api) -> None:
    county, village = await api.login("county"), await api.login("village")
    r = await refer_down(county)
    f = await _follow_up(api, r["follow_up_id"])
    requested = datetime.fromisoformat(r["times"]["requested_at"])
    assert f.due_at == requested + timedelta(days=7) and f.status == "due"
    assert f.plan == "Check temperature and SpO2"
    status, rows = await village.get("/api/follow-ups")
    assert status == 200 and r["follow_up_id"] not in {x["id"] for x in rows}
    status, r = await village.post(f"/api/referrals/{r['id']}/accept")
    assert status == 200
    status, rows = await village.get("/api/follow-ups")
    mine = next(x for x in rows if x["id"] == r["follow_up_id"])
    assert mine | {"patient": None, "due_at": None} == {
        "id": r["follow_up_id"], "referral_id": r["id"], "patient_id": r["patient_id"],
        "patient": None, "institution_id": r["to_institution_id"],
        "assigned_to_id": village.user["id"], "assigned_to_name": village.user["display_name"],
        "plan": "Check temperature and SpO2", "due_at": None, "status": "due",
        "overdue": False, "outcome": None, "completed_at": None, "completed_by_name": None,
        "from_institution_id": r["from_institution_id"]}
    assert mine["patient"]["id"] == r["patient_id"]
    # The patient arrives: a due date nobody set moves to a week after the arrival.
    status, r = await village.post(f"/api/referrals/{r['id']}/arrive")
    f = await _follow_up(api, r["follow_up_id"])
    assert f.due_at == datetime.fromisoformat(r["times"]["arrived_at"]) + timedelta(days=7)
    assert (await county.get("/api/follow-ups"))[1] == [] or \
        r["follow_up_id"] not in {x["id"] for x in (await county.get("/api/follow-ups"))[1]}
    status, err = await county.post(f"/api/follow-ups/{r['follow_up_id']}/complete",
                                    {"outcome": "x"})
    assert status == 404
    for body in ({}, {"outcome": ""}, {"outcome": 3}):
        status, err = await village.post(f"/api/follow-ups/{r['follow_up_id']}/complete", body)
        assert status == 422, body
    status, done = await village.post(f"/api/follow-ups/{r['follow_up_id']}/complete",
                                      {"outcome": "Afebrile, SpO2 97%; continue at home"})
    assert status == 200, done
    assert done["status"] == "completed" and done["completed_by_name"] == \
        village.user["display_name"] and done["outcome"].startswith("Afebrile")
    status, err = await village.post(f"/api/follow-ups/{r['follow_up_id']}/complete",
                                     {"outcome": "again"})
    assert status == 409 and err["error"]["code"] == "invalid_transition"
    status, rows = await village.get("/api/follow-ups", params={"status": "completed"})
    assert r["follow_up_id"] in {x["id"] for x in rows}
    status, rows = await village.get("/api/follow-ups")
    assert r["follow_up_id"] not in {x["id"] for x in rows}


async def test_due_and_overdue(api: Api) -> None:
    county, village = await api.login("county"), await api.login("village")
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    late = await refer_down(county, follow_up_due=iso(due))
    soon = await refer_down(county, follow_up_due=iso(due))
    for r in (late, soon):
        await village.post(f"/api/referrals/{r['id']}/accept")
        await village.post(f"/api/referrals/{r['id']}/arrive")
    assert (await _follow_up(api, soon["follow_up_id"])).due_at == due  # set: kept
    async with api.server.app[keys.DATABASE].write() as session:
        await session.execute(update(FollowUp).where(FollowUp.id == late["follow_up_id"]).values(
            due_at=datetime.now(UTC) - timedelta(days=1)))
    status, rows = await village.get("/api/follow-ups")
    ids = [x["id"] for x in rows]
    assert ids.index(late["follow_up_id"]) < ids.index(soon["follow_up_id"])
    assert {x["id"]: x["overdue"] for x in rows if x["id"] in (late["follow_up_id"],
                                                             soon["follow_up_id"])} == {
        late["follow_up_id"]: True, soon["follow_up_id"]: False}
    status, rows = await village.get("/api/follow-ups", params={"status": "overdue"})
    assert late["follow_up_id"] in {x["id"] for x in rows}
    assert soon["follow_up_id"] not in {x["id"] for x in rows}
    status, rows = await village.get("/api/follow-ups", params={"status": "due"})
    assert soon["follow_up_id"] in {x["id"] for x in rows}
    assert late["follow_up_id"] not in {x["id"] for x in rows}
    status, err = await village.get("/api/follow-ups", params={"status": "later"})
    assert status == 422


async def test_rejecting_or_cancelling_cancels_the_follow_up(api: Api) -> None:
    county, village = await api.login("county"), await api.login("village")
    rejected = await refer_down(county)
    await village.post(f"/api/referrals/{rejected['id']}/reject", {"reason": "No capacity"})
    cancelled = await refer_down(county)
    await village.post(f"/api/referrals/{cancelled['id']}/accept")
    await county.post(f"/api/referrals/{cancelled['id']}/cancel", {"reason": "Stays in ward"})
    for r in (rejected, cancelled):
        assert (await _follow_up(api, r["follow_up_id"])).status == "cancelled"
    status, err = await village.post(f"/api/follow-ups/{cancelled['follow_up_id']}/complete",
                                     {"outcome": "x"})
    assert status == 409
    status, err = await county.post("/api/referrals", {
        "patient_id": rejected["patient_id"], "direction": "down",
        "to_institution_id": rejected["to_institution_id"], "reason": "x",
        "follow_up_due": iso(datetime.now(UTC) - timedelta(days=1))})
    assert status == 422


def _on_call_now(targets: list[dict[str, Any]], institution_id: int, department_id: int
                 ) -> int:
    place = next(t for t in targets if t["id"] == institution_id)
    return next(d["on_call_now"] for d in place["departments"] if d["id"] == department_id)


async def test_on_call_roster_crud_and_permissions(api: Api) -> None:
    coordinator, admin = await api.login("coordinator"), await api.login("admin")
    other_coordinator = await api.login("guilin_coordinator")
    county, township = await api.login("county"), await api.login("township")
    inst = await institutions(county)
    medicine = department(inst[DIANBAI], "internal_medicine")
    now = datetime.now(UTC).replace(microsecond=0)
    shift = {"department_id": medicine, "user_id": county.user["id"],
             "start": iso(now - timedelta(hours=1)), "end": iso(now + timedelta(hours=11))}
    for client in (other_coordinator, township, county):
        status, err = await client.post("/api/on-call", shift)
        assert status == 403, err
    bad = [({"end": shift["start"]}, "validation_error"),
           ({"end": iso(now + timedelta(days=8))}, "shift_too_long"),
           ({"user_id": township.user["id"]}, "not_staff"),
           ({"user_id": coordinator.user["id"]}, "not_staff"),
           ({"department_id": 999999}, "validation_error"),
           ({"start": "tomorrow"}, "validation_error")]
    for change, code in bad:
        status, err = await coordinator.post("/api/on-call", shift | change)
        assert (status, err["error"]["code"]) == (422, code), change
    status, targets = await township.get("/api/referral-targets", params={"direction": "up"})
    before = _on_call_now(targets, inst[DIANBAI]["id"], medicine)
    async with api.server.app[keys.DATABASE].read() as session:
        shifts = await session.scalar(select(func.count()).select_from(OnCallShift))
    status, err = await coordinator.post("/api/on-call", shift | {"user_id": 999999})
    assert status == 422
    async with api.server.app[keys.DATABASE].read() as session:
        assert await session.scalar(select(func.count()).select_from(OnCallShift)) == shifts
    status, made = await coordinator.post("/api/on-call", shift)
    assert status == 201, made
    assert made | {"id": 0} == {
        "id": 0, "department_id": medicine, "department_name": "Internal Medicine",
        "institution_id": inst[DIANBAI]["id"], "user_id": county.user["id"],
        "user_name": county.user["display_name"], "start": made["start"], "end": made["end"],
        "now": True}
    status, later = await admin.post("/api/on-call", shift | {
        "start": iso(now + timedelta(days=2)), "end": iso(now + timedelta(days=3))})
    assert status == 201
    status, rows = await township.get("/api/on-call", params={"department_id": str(medicine)})
    assert [(x["id"], x["now"]) for x in rows if x["id"] in (made["id"], later["id"])] == [
        (made["id"], True), (later["id"], False)]
    status, rows = await township.get("/api/on-call", params={
        "institution_id": str(inst[DIANBAI]["id"]), "from": iso(now + timedelta(days=1)),
        "to": iso(now + timedelta(days=4))})
    assert later["id"] in {x["id"] for x in rows} and made["id"] not in {x["id"] for x in rows}
    status, err = await township.get("/api/on-call", params={"from": iso(now),
                                                             "to": iso(now)})
    assert status == 422
    status, targets = await township.get("/api/referral-targets", params={"direction": "up"})
    assert _on_call_now(targets, inst[DIANBAI]["id"], medicine) == before + 1
    status, err = await other_coordinator.request("DELETE", f"/api/on-call/{made['id']}")
    assert status == 403
    status, _ = await coordinator.request("DELETE", f"/api/on-call/{made['id']}")
    assert status == 204
    status, err = await coordinator.request("DELETE", f"/api/on-call/{made['id']}")
    assert status == 404
    status, rows = await township.get("/api/on-call", params={"department_id": str(medicine)})
    assert made["id"] not in {x["id"] for x in rows} and later["id"] in {x["id"] for x in rows}


async def test_department_head(api: Api) -> None:
    coordinator, county = await api.login("coordinator"), await api.login("county")
    inst = await institutions(county)
    medicine = department(inst[DIANBAI], "internal_medicine")
    status, err = await county.put(f"/api/departments/{medicine}/head",
                                   {"user_id": county.user["id"]})
    assert status == 403
    status, err = await coordinator.put(f"/api/departments/{medicine}/head",
                                        {"user_id": coordinator.user["id"]})
    assert status == 422 and err["error"]["code"] == "not_staff"
    status, err = await coordinator.put("/api/departments/999999/head", {"user_id": None})
    assert status == 404
    status, head = await coordinator.put(f"/api/departments/{medicine}/head",
                                         {"user_id": county.user["id"]})
    assert status == 200 and head == {"id": medicine, "name": "Internal Medicine",
                                      "institution_id": inst[DIANBAI]["id"],
                                      "head_id": county.user["id"],
                                      "head_name": county.user["display_name"]}
    status, head = await coordinator.put(f"/api/departments/{medicine}/head", {"user_id": None})
    assert status == 200 and head["head_id"] is None
    status, err = await coordinator.put(f"/api/departments/{medicine}/head", {})
    assert status == 422
