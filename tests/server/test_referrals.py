"""The referral workflow over HTTP: every transition and every illegal one, who may take
each, the timeline of events and time points, the order of the list, and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import Api
from tests.server.helpers import new_patient
from tests.server.referral_helpers import (
    DIANBAI,
    GDPH,
    SHANGTANG,
    department,
    institutions,
    refer_down,
    refer_up,
)
from yilian.server.clinic.models import Referral, ReferralEvent, ReferralMilestone
from yilian.server.clinic.referrals.workflow import ACTORS, STATES, TRANSITIONS
from yilian.server.core import keys

pytestmark = pytest.mark.asyncio

REASONS = {"reject": {"reason": "No ICU bed"}, "cancel": {"reason": "Family declined"}}


async def _to_state(township: Api, county: Api, state: str) -> dict[str, Any]:
    """A fresh referral brought to ``state`` by the legal path."""
    r = await refer_up(township)
    path = {"requested": [], "accepted": [(county, "accept")],
            "rejected": [(county, "reject")], "cancelled": [(township, "cancel")],
            "in_transit": [(county, "accept"), (township, "depart")],
            "arrived": [(county, "accept"), (township, "depart"), (county, "arrive")],
            "completed": [(county, "accept"), (county, "arrive"), (county, "complete")]}
    for client, action in path.get(state, []):
        status, r = await client.post(f"/api/referrals/{r['id']}/{action}",
                                      REASONS.get(action))
        assert status == 200, r
    assert r["status"] == state
    return r


async def test_full_way_up_records_who_and_when(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    r = await refer_up(township)
    assert r["status"] == "requested" and r["direction"] == "up"
    assert r["requester_id"] == township.user["id"]
    assert r["actions"] == ["cancel"]
    assert [m["milestone"] for m in r["milestones"]] == ["request"]
    assert r["milestones"][0]["source"] == "transition"
    assert r["milestone_names"] == ["request", "accept", "departure", "door"]
    assert r["times"]["requested_at"] and r["times"]["accepted_at"] is None
    assert r["intervals"]["request_to_accept"]["done"] is False
    assert r["intervals"]["request_to_accept"]["minutes"] is not None  # running
    status, seen = await county.get(f"/api/referrals/{r['id']}")
    assert status == 200 and seen["actions"] == ["accept", "reject"]

    steps = [(county, "accept", "accepted", "accepted_at", "accept"),
             (township, "depart", "in_transit", "departed_at", "departure"),
             (county, "arrive", "arrived", "arrived_at", "door"),
             (county, "complete", "completed", "completed_at", None)]
    for client, action, state, column, point in steps:
        status, r = await client.post(f"/api/referrals/{r['id']}/{action}")
        assert status == 200, r
        assert r["status"] == state
        assert r["times"][column] is not None
        assert r["history"][-1]["to_status"] == state
        assert r["history"][-1]["actor_id"] == client.user["id"]
        if point:
            assert r["milestones"][-1]["milestone"] == point
            assert r["milestones"][-1]["source"] == "transition"
            assert r["milestones"][-1]["at"] == r["history"][-1]["at"]
    assert [h["to_status"] for h in r["history"]] == [
        "requested", "accepted", "in_transit", "arrived", "completed"]
    assert r["accepted_by_id"] == county.user["id"]
    assert r["intervals"]["request_to_door"]["done"] is True
    assert r["actions"] == []


@pytest.mark.parametrize("state", [s for s in STATES if s != "expired"])
async def test_every_illegal_transition_is_409(api: Api, state: str) -> None:
    township, county = await api.login("township"), await api.login("county")
    r = await _to_state(township, county, state)
    db = api.server.app[keys.DATABASE]
    for action, table in TRANSITIONS.items():
        if action == "expire" or state in table:
            continue
        client = county if ACTORS[action] == "receiving" else township
        status, body = await client.post(f"/api/referrals/{r['id']}/{action}",
                                         REASONS.get(action))
        assert status == 409, (state, action, body)
        assert body["error"]["code"] == "invalid_transition"
        assert body["error"]["details"]["status"] == state
    async with db.read() as session:
        events = await session.scalar(select(func.count()).select_from(ReferralEvent).where(
            ReferralEvent.referral_id == r["id"]))
    assert events == len(r["history"])  # nothing was appended


async def test_every_legal_transition_from_each_state(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    for action, table in TRANSITIONS.items():
        if action == "expire":
            continue
        for start, end in table.items():
            r = await _to_state(township, county, start)
            client = county if ACTORS[action] == "receiving" else township
            status, body = await client.post(f"/api/referrals/{r['id']}/{action}",
                                             REASONS.get(action))
            assert status == 200, (action, start, body)
            assert body["status"] == end
            if action in REASONS:
                assert body["close_reason"] == REASONS[action]["reason"]
                assert body["history"][-1]["note"] == REASONS[action]["reason"]
                assert body["times"]["closed_at"] == body["history"][-1]["at"]


async def test_actors_wrong_team_is_403_unrelated_is_404(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    outsider = await api.login("guilin_neurosurgery")
    coordinator = await api.login("coordinator")
    r = await refer_up(township)
    rid = r["id"]
    for action in ("accept", "arrive", "complete"):
        status, body = await township.post(f"/api/referrals/{rid}/{action}")
        assert status == 403, (action, body)
    status, body = await township.post(f"/api/referrals/{rid}/reject", {"reason": "x"})
    assert status == 403
    status, body = await county.post(f"/api/referrals/{rid}/cancel", {"reason": "x"})
    assert status == 403
    status, body = await county.post(f"/api/referrals/{rid}/accept")
    assert status == 200
    status, body = await county.post(f"/api/referrals/{rid}/depart")
    assert status == 403
    for action in ("accept", "depart", "arrive", "cancel"):
        status, body = await outsider.post(f"/api/referrals/{rid}/{action}",
                                           REASONS.get(action))
        assert status == 404, (action, body)
    status, body = await coordinator.get(f"/api/referrals/{rid}")
    assert status == 403  # not a clinical role
    status, body = await outsider.get(f"/api/referrals/{rid}")
    assert status == 404


async def test_reject_and_cancel_need_a_reason(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    r = await refer_up(township)
    for client, action in ((county, "reject"), (township, "cancel")):
        for body in (None, {}, {"reason": ""}, {"reason": 5}, {"reason": "x", "extra": 1}):
            status, resp = await client.post(f"/api/referrals/{r['id']}/{action}", body)
            assert status in (400, 415, 422), (action, body, resp)
    status, r = await county.get(f"/api/referrals/{r['id']}")
    assert r["status"] == "requested" and len(r["history"]) == 1


async def test_list_order_filters_and_visibility(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    outsider = await api.login("guilin_doctor")
    ordinary = await refer_up(township)
    green = await refer_up(township, green_channel="stroke")
    closed_green = await refer_up(township, green_channel="chest_pain")
    await township.post(f"/api/referrals/{closed_green['id']}/cancel", {"reason": "Recovered"})
    newer = await refer_up(township)
    mine = {ordinary["id"], green["id"], closed_green["id"], newer["id"]}
    for client in (township, county):
        status, rows = await client.get("/api/referrals")
        assert status == 200
        ids = [x["id"] for x in rows if x["id"] in mine]
        assert ids == [green["id"], newer["id"], ordinary["id"], closed_green["id"]]
    status, rows = await county.get("/api/referrals", params={"box": "incoming",
                                                              "green_channel": "any"})
    assert {x["id"] for x in rows} >= {green["id"], closed_green["id"]}
    assert not {x["id"] for x in rows} & {ordinary["id"], newer["id"]}
    status, rows = await county.get("/api/referrals", params={"box": "outgoing"})
    assert not {x["id"] for x in rows} & mine
    status, rows = await township.get("/api/referrals", params={"open": "false"})
    assert closed_green["id"] in {x["id"] for x in rows}
    assert not {x["id"] for x in rows} & (mine - {closed_green["id"]})
    status, rows = await township.get("/api/referrals", params={"status": "cancelled"})
    assert [x["id"] for x in rows if x["id"] in mine] == [closed_green["id"]]
    status, rows = await outsider.get("/api/referrals")
    assert status == 200 and not {x["id"] for x in rows} & mine
    status, body = await township.get("/api/referrals", params={"status": "nope"})
    assert status == 422


async def test_bad_input_stores_nothing(api: Api) -> None:
    township = await api.login("township")
    county = await api.login("county")
    inst = await institutions(township)
    patient = await new_patient(township)
    foreign = await new_patient(await api.login("guilin_doctor"))
    good = {"patient_id": patient["id"], "direction": "up",
            "to_institution_id": inst[DIANBAI]["id"], "reason": "Needs CT"}
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({"patient_id": "1"}, 422, "validation_error"),
        ({"direction": "sideways"}, 422, "validation_error"),
        ({"reason": ""}, 422, "validation_error"),
        ({"green_channel": "flu"}, 422, "validation_error"),
        ({"onset_at": "2030-13-01T00:00:00+08:00"}, 422, "validation_error"),
        ({"onset_at": "2099-01-01T00:00:00+08:00"}, 422, "time_in_future"),
        ({"surprise": True}, 422, "validation_error"),
        ({"patient_id": foreign["id"]}, 404, "not_found"),
        ({"patient_id": 999999}, 404, "not_found"),
        ({"to_institution_id": inst[SHANGTANG]["id"]}, 422, "invalid_referral_target"),
        ({"to_institution_id": 999999}, 422, "validation_error"),
        ({"direction": "down"}, 422, "invalid_referral_target"),
        ({"department": department(inst[GDPH], "cardiology")}, 422, "unknown_department"),
        ({"department": 999999}, 422, "unknown_department"),
        ({"green_channel": "stroke", "first_contact_at": "2024-01-01T00:00:00+08:00"}, 422,
         "validation_error"),
        ({"follow_up_plan": "check BP"}, 422, "validation_error"),
        ({"study_uids": ["1.2.3.4.5"]}, 404, "study_not_found"),
        ({"consultation_id": 999999}, 404, "not_found"),
    ]
    db = api.server.app[keys.DATABASE]
    async with db.read() as session:
        before = await session.scalar(select(func.count()).select_from(Referral))
        points = await session.scalar(select(func.count()).select_from(ReferralMilestone))
    for change, status, code in cases:
        got, body = await township.post("/api/referrals", good | change)
        assert got == status, (change, body)
        assert body["error"]["code"] == code, (change, body)
    got, body = await county.post("/api/referrals", good | {"patient_id": patient["id"]})
    assert got == 404  # not the county's patient
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Referral)) == before
        assert await session.scalar(
            select(func.count()).select_from(ReferralMilestone)) == points


async def test_down_referral_goes_to_a_lower_level(api: Api) -> None:
    county = await api.login("county")
    r = await refer_down(county)
    assert r["direction"] == "down" and r["follow_up_id"] is not None
    inst = await institutions(county)
    patient = await new_patient(county)
    status, body = await county.post("/api/referrals", {
        "patient_id": patient["id"], "direction": "down", "to_institution_id": inst[GDPH]["id"],
        "reason": "x"})
    assert status == 422 and body["error"]["code"] == "invalid_referral_target"
    status, body = await county.post("/api/referrals", {
        "patient_id": patient["id"], "direction": "down",
        "to_institution_id": inst[SHANGTANG]["id"], "reason": "x", "green_channel": "stroke"})
    assert status == 422


async def test_unknown_path_ids_are_404(api: Api) -> None:
    township = await api.login("township")
    for path in ("/api/referrals/999999", "/api/referrals/abc", "/api/referrals/0"):
        status, body = await township.get(path)
        assert status == 404, path
    status, body = await township.post("/api/referrals/999999/accept")
    assert status == 404
