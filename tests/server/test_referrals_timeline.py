"""The green channel's clock over HTTP: recording time points (the first door is the arrival),
corrections that keep the old value and need a reason, who records what, bad times; and the
receiving institutions a referral may go to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import Api
from tests.server.referral_helpers import GDPH, SHALANG, SHANGTANG, institutions, refer_up
from yilian.server.clinic.models import ReferralMilestone
from yilian.server.core import keys

pytestmark = pytest.mark.asyncio


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _count_points(api: Api, referral_id: int) -> int:
    async with api.server.app[keys.DATABASE].read() as session:
        return await session.scalar(select(func.count()).select_from(ReferralMilestone).where(
            ReferralMilestone.referral_id == referral_id)) or 0


async def test_stroke_door_to_needle(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    onset = datetime.now(UTC) - timedelta(hours=2)
    r = await refer_up(township, green_channel="stroke", onset_at=iso(onset))
    assert r["milestone_names"] == ["onset", "request", "accept", "departure", "door",
                                    "ct_done", "needle", "puncture"]
    assert [m["milestone"] for m in r["milestones"]] == ["request", "onset"]
    rid = r["id"]
    status, r = await county.post(f"/api/referrals/{rid}/milestones", {"milestone": "accept"})
    assert status == 200 and r["status"] == "accepted", r
    assert r["accepted_by_id"] == county.user["id"]
    door = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=50)
    status, r = await county.post(f"/api/referrals/{rid}/milestones",
                                  {"milestone": "door", "at": iso(door)})
    assert status == 200, r
    assert r["status"] == "arrived"  # the first door time is the arrival
    assert parse(r["times"]["arrived_at"]) == door
    assert r["milestones"][-1] | {"id": 0, "recorded_at": ""} == {
        "id": 0, "milestone": "door", "at": r["milestones"][-1]["at"],
        "recorded_by_id": county.user["id"], "recorded_by_name": county.user["display_name"],
        "recorded_at": "", "source": "transition", "corrects_id": None, "reason": None,
        "superseded": False}
    assert r["history"][-1]["to_status"] == "arrived"
    running = r["intervals"]["door_to_needle"]
    assert running["done"] is False and 49.9 <= running["minutes"] <= 51 and running["met"] is None
    status, r = await county.post(f"/api/referrals/{rid}/milestones",
                                  {"milestone": "ct_done", "at": iso(door + timedelta(minutes=18))})
    assert status == 200
    status, r = await county.post(f"/api/referrals/{rid}/milestones",
                                  {"milestone": "needle", "at": iso(door + timedelta(minutes=42))})
    assert status == 200
    assert r["intervals"]["door_to_ct"] == {"start": "door", "end": "ct_done", "minutes": 18.0,
                                            "target_minutes": 25, "done": True, "met": True}
    assert r["intervals"]["door_to_needle"] == {
        "start": "door", "end": "needle", "minutes": 42.0, "target_minutes": 60, "done": True,
        "met": True}
    assert r["intervals"]["onset_to_door"]["minutes"] == pytest.approx(
        (door - onset).total_seconds() / 60, abs=0.1)
    assert r["intervals"]["door_to_puncture"]["done"] is False


async def test_corrections_keep_the_old_value_and_need_a_reason(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    r = await refer_up(township, green_channel="stroke")
    rid = r["id"]
    await county.post(f"/api/referrals/{rid}/accept")
    status, r = await county.post(f"/api/referrals/{rid}/arrive")
    first_door = r["milestones"][-1]
    needle_at = parse(r["times"]["arrived_at"]) + timedelta(seconds=1)
    needle_at = min(needle_at, datetime.now(UTC))
    status, r = await county.post(f"/api/referrals/{rid}/milestones",
                                  {"milestone": "needle", "at": iso(needle_at)})
    assert status == 200
    before = await _count_points(api, rid)
    for body in ({"milestone": "door"}, {"milestone": "door", "reason": ""},
                 {"milestone": "needle", "at": iso(needle_at)}):
        status, err = await county.post(f"/api/referrals/{rid}/milestones", body)
        assert status == 422, (body, err)
    assert err["error"]["code"] == "reason_required"
    assert await _count_points(api, rid) == before
    corrected = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    status, r = await county.post(f"/api/referrals/{rid}/milestones", {
        "milestone": "door", "at": iso(corrected), "reason": "Triage clock was 30 min fast"})
    assert status == 200, r
    doors = [m for m in r["milestones"] if m["milestone"] == "door"]
    assert [d["id"] for d in doors][0] == first_door["id"]
    assert doors[0]["superseded"] is True and doors[0]["at"] == first_door["at"]
    assert doors[1] | {"id": 0} == doors[1] | {
        "id": 0, "corrects_id": first_door["id"], "reason": "Triage clock was 30 min fast",
        "source": "manual", "superseded": False}
    assert parse(r["times"]["arrived_at"]) == corrected  # the column follows
    assert r["intervals"]["door_to_needle"]["minutes"] == pytest.approx(
        (needle_at - corrected).total_seconds() / 60, abs=0.1)
    # A correction of a correction names the one it replaces.
    status, r = await county.post(f"/api/referrals/{rid}/milestones", {
        "milestone": "door", "at": iso(corrected + timedelta(minutes=1)), "reason": "Again"})
    doors = [m for m in r["milestones"] if m["milestone"] == "door"]
    assert doors[2]["corrects_id"] == doors[1]["id"]
    assert [d["superseded"] for d in doors] == [True, True, False]
    # Recording again after completion is a late entry and still allowed.
    status, r = await county.post(f"/api/referrals/{rid}/complete")
    status, r = await county.post(f"/api/referrals/{rid}/milestones", {"milestone": "ct_done"})
    assert status == 200


async def test_who_records_what(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    outsider = await api.login("guilin_neurosurgery")
    r = await refer_up(township, green_channel="chest_pain",
                       first_contact_at=iso(datetime.now(UTC) - timedelta(minutes=20)))
    rid = r["id"]
    assert [m["milestone"] for m in r["milestones"]] == ["request", "first_contact"]
    status, r = await township.post(f"/api/referrals/{rid}/milestones",
                                    {"milestone": "first_ecg"})
    assert status == 200 and r["intervals"]["contact_to_ecg"]["done"] is True
    assert r["intervals"]["contact_to_ecg"]["met"] is False  # 20 minutes > 10
    for point in ("balloon", "door", "accept", "cath_lab_activated"):
        status, err = await township.post(f"/api/referrals/{rid}/milestones",
                                          {"milestone": point})
        assert status == 403, (point, err)
    status, err = await county.post(f"/api/referrals/{rid}/milestones",
                                    {"milestone": "departure"})
    assert status == 403
    status, err = await outsider.post(f"/api/referrals/{rid}/milestones",
                                      {"milestone": "balloon"})
    assert status == 404
    # door before accept: the arrival needs an accepted referral
    status, err = await county.post(f"/api/referrals/{rid}/milestones", {"milestone": "door"})
    assert status == 409 and err["error"]["code"] == "invalid_transition"
    await county.post(f"/api/referrals/{rid}/accept")
    status, r = await township.post(f"/api/referrals/{rid}/milestones",
                                    {"milestone": "departure"})
    assert status == 200 and r["status"] == "in_transit"


async def test_bad_time_points_store_nothing(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    r = await refer_up(township, green_channel="stroke")
    rid = r["id"]
    now = datetime.now(UTC)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"milestone": "balloon"}, 422, "unknown_milestone"),
        ({"milestone": "bogus"}, 422, "unknown_milestone"),
        ({"milestone": "Door"}, 422, "validation_error"),
        ({"milestone": "request"}, 422, "unknown_milestone"),
        ({"milestone": "ct_done", "at": iso(now + timedelta(hours=1))}, 422, "time_in_future"),
        ({"milestone": "ct_done", "at": iso(now - timedelta(days=2))}, 422, "time_too_early"),
        ({"milestone": "ct_done", "at": "yesterday"}, 422, "validation_error"),
        ({"milestone": "ct_done", "at": "2025-01-01T08:00:00"}, 422, "validation_error"),
        ({"milestone": 7}, 422, "validation_error"),
        ({"milestone": "ct_done", "extra": 1}, 422, "validation_error"),
        ({"milestone": "onset", "at": iso(now + timedelta(hours=1))}, 422, "time_in_future"),
    ]
    before = await _count_points(api, rid)
    for body, status, code in cases:
        got, err = await county.post(f"/api/referrals/{rid}/milestones", body)
        assert (got, err["error"]["code"]) == (status, code), body
    assert await _count_points(api, rid) == before
    # onset may be long before the request
    status, r = await county.post(f"/api/referrals/{rid}/milestones",
                                  {"milestone": "onset", "at": iso(now - timedelta(days=3))})
    assert status == 200
    status, r = await township.post(f"/api/referrals/{rid}/cancel", {"reason": "Died"})
    status, err = await county.post(f"/api/referrals/{rid}/milestones", {"milestone": "ct_done"})
    assert status == 409 and err["error"]["code"] == "invalid_transition"


async def test_ordinary_referral_keeps_the_workflow_clock(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    r = await refer_up(township)
    status, err = await county.post(f"/api/referrals/{r['id']}/milestones",
                                    {"milestone": "needle"})
    assert status == 422 and err["error"]["details"]["allowed"] == [
        "request", "accept", "departure", "door"]
    await county.post(f"/api/referrals/{r['id']}/accept")
    status, r = await county.post(f"/api/referrals/{r['id']}/milestones", {"milestone": "door"})
    assert status == 200 and r["status"] == "arrived"
    assert list(r["intervals"]) == ["request_to_accept", "request_to_door"]
    assert all(i["done"] for i in r["intervals"].values())


async def test_targets_up_and_down(api: Api) -> None:
    township, county, village = (await api.login("township"), await api.login("county"),
                                 await api.login("village"))
    inst = await institutions(township)
    by_id = {i["id"]: i for i in inst.values()}
    status, up = await township.get("/api/referral-targets", params={"direction": "up"})
    assert status == 200
    assert {t["level"] for t in up} == {"province", "city", "county"}
    assert {t["id"] for t in up} == {i["id"] for i in inst.values()
                                     if i["level"] in ("province", "city", "county")}
    flags = [t["in_my_alliance"] for t in up]
    assert flags == sorted(flags, reverse=True) and flags[0] and not flags[-1]
    assert [t["name"] for t in up if t["in_my_alliance"]][0] == \
        "Dianbai District People's Hospital"  # nearest level first
    gdph = next(t for t in up if t["name"] == GDPH)
    assert {d["name"] for d in gdph["departments"]} >= {"Cardiology", "Radiology"}
    assert all(d["on_call_now"] >= 0 for d in gdph["departments"])
    status, down = await township.get("/api/referral-targets", params={"direction": "down"})
    assert [t["level"] for t in down] == ["village"]
    assert down[0]["name"] == SHANGTANG and down[0]["in_my_alliance"]
    status, down = await county.get("/api/referral-targets", params={"direction": "down"})
    assert {by_id[t["id"]]["level"] for t in down} == {"township", "village"}
    assert down[0]["name"] in (SHALANG, SHANGTANG)
    status, below = await village.get("/api/referral-targets", params={"direction": "down"})
    assert status == 200 and below == []
    status, err = await village.get("/api/referral-targets", params={"direction": "left"})
    assert status == 422
    status, err = await village.get("/api/referral-targets")
    assert status == 422
    status, err = await (await api.login("admin")).get("/api/referral-targets",
                                                       params={"direction": "up"})
    assert status == 403
