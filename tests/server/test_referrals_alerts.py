"""Who is notified of what in a referral's life (inbox rows, in each recipient's language),
and the two clocks the server watches: expiry and green-channel escalation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, update

from tests.conftest import Api, with_settings
from tests.server.referral_helpers import (
    DIANBAI,
    department,
    institutions,
    notifications,
    refer_down,
    refer_up,
)
from yilian.server.clinic.models import FollowUp, OnCallShift, Referral
from yilian.server.clinic.referrals import sweeps
from yilian.server.core import keys
from yilian.server.core.models import Department
from yilian.server.core.settings import Settings

pytestmark = pytest.mark.asyncio


async def _medicine(api: Api, client: Api) -> int:
    """Dianbai's cardiology (the `county` user's department), with nobody on call and no
    head (whatever the demo set)."""
    inst = await institutions(client)
    medicine = department(inst[DIANBAI], "cardiology")
    async with api.server.app[keys.DATABASE].write() as session:
        await session.execute(delete(OnCallShift).where(OnCallShift.department_id == medicine))
        await session.execute(update(Department).where(Department.id == medicine)
                              .values(head_id=None))
    return medicine


async def _on_call(coordinator: Api, department_id: int, user_id: int) -> None:
    now = datetime.now(UTC)
    status, body = await coordinator.post("/api/on-call", {
        "department_id": department_id, "user_id": user_id,
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=8)).isoformat()})
    assert status == 201, body


async def _kinds(api: Api, user: dict[str, Any], referral_id: int) -> list[str]:
    return [n.kind for n in await notifications(api, user["id"])
            if n.resource_type == "referral" and n.resource_id == str(referral_id)]


async def test_ordinary_request_goes_to_the_department_in_each_language(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    radiology = await api.login("county_radiology")
    await _medicine(api, township)
    status, _ = await radiology.put("/api/me/preferences", {"locale": "en"})
    assert status == 200
    r = await refer_up(township)
    rows = await notifications(api, county.user["id"], "referral.requested")
    mine = [n for n in rows if n.resource_id == str(r["id"])]
    assert len(mine) == 1
    n = mine[0]
    assert (n.resource_type, n.urgent, n.read_at) == ("referral", False, None)
    assert n.title == "新的上转转诊申请"
    assert "沙琅镇中心卫生院" in n.body and f"#{r['id']}" in n.body
    assert "Suspected stroke" not in n.body  # clinical text stays on the (audited) referral
    assert await _kinds(api, radiology.user, r["id"]) == []
    assert await _kinds(api, township.user, r["id"]) == []  # not told of their own request
    # Without a department: the institution's specialists, each in their language.
    r2 = await refer_up(township, department=None)
    english = [n for n in await notifications(api, radiology.user["id"], "referral.requested")
               if n.resource_id == str(r2["id"])]
    assert [n.title for n in english] == ["New upward referral"]
    assert english[0].body.startswith("From Shalang Town Central Health Centre")


async def test_green_channel_alerts_those_on_call(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    radiology, coordinator = await api.login("county_radiology"), await api.login("coordinator")
    medicine = await _medicine(api, township)
    await _on_call(coordinator, medicine, radiology.user["id"])
    r = await refer_up(township, green_channel="stroke")
    alerts = [n for n in await notifications(api, radiology.user["id"], "referral.green_channel")
              if n.resource_id == str(r["id"])]
    assert len(alerts) == 1 and alerts[0].urgent is True
    assert alerts[0].title == "绿色通道：卒中患者转诊"
    assert await _kinds(api, county.user, r["id"]) == []  # on staff, but not on call


async def test_green_channel_with_nobody_on_call_goes_to_staff_and_head(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    radiology, coordinator = await api.login("county_radiology"), await api.login("coordinator")
    medicine = await _medicine(api, township)
    status, _ = await coordinator.put(f"/api/departments/{medicine}/head",
                                      {"user_id": radiology.user["id"]})
    assert status == 200
    r = await refer_up(township, green_channel="chest_pain")
    for user in (county.user, radiology.user):
        assert await _kinds(api, user, r["id"]) == ["referral.green_channel"]


async def test_each_step_tells_the_other_side(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    await _medicine(api, township)
    r = await refer_up(township)
    rid = r["id"]
    await county.post(f"/api/referrals/{rid}/accept")
    await township.post(f"/api/referrals/{rid}/depart")
    await county.post(f"/api/referrals/{rid}/arrive")
    assert await _kinds(api, township.user, rid) == ["referral.accepted", "referral.arrived"]
    assert await _kinds(api, county.user, rid) == ["referral.requested", "referral.departed"]
    r = await refer_up(township)
    await county.post(f"/api/referrals/{r['id']}/reject", {"reason": "No beds tonight"})
    rejected = [n for n in await notifications(api, township.user["id"], "referral.rejected")
                if n.resource_id == str(r["id"])]
    assert len(rejected) == 1 and "No beds tonight" not in rejected[0].body
    r = await refer_up(township)
    await township.post(f"/api/referrals/{r['id']}/cancel", {"reason": "Family declined"})
    assert await _kinds(api, county.user, r["id"]) == ["referral.requested",
                                                       "referral.cancelled"]


async def test_down_referral_accepted_tells_the_clinic_of_its_follow_up(api: Api) -> None:
    county, village = await api.login("county"), await api.login("village")
    r = await refer_down(county)
    assert await _kinds(api, village.user, r["id"]) == ["referral.requested"]
    await village.post(f"/api/referrals/{r['id']}/accept")
    assert await _kinds(api, village.user, r["id"]) == ["referral.requested",
                                                        "follow_up.created"]
    assert await _kinds(api, county.user, r["id"]) == ["referral.accepted"]


async def test_escalation_fires_once_to_head_and_coordinators(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    radiology, coordinator = await api.login("county_radiology"), await api.login("coordinator")
    guilin_coordinator = await api.login("guilin_coordinator")
    medicine = await _medicine(api, township)
    await coordinator.put(f"/api/departments/{medicine}/head", {"user_id": radiology.user["id"]})
    r = await refer_up(township, green_channel="stroke")
    ordinary = await refer_up(township)
    db = api.server.app[keys.DATABASE]
    assert await sweeps.escalate_waiting(db, 3600) == 0
    assert await sweeps.escalate_waiting(db, 0) >= 1
    for user in (radiology.user, coordinator.user):
        escalated = [n for n in await notifications(api, user["id"], "referral.escalated")
                     if n.resource_id == str(r["id"])]
        assert len(escalated) == 1 and escalated[0].urgent is True
    assert await _kinds(api, guilin_coordinator.user, r["id"]) == []
    assert "referral.escalated" not in await _kinds(api, county.user, r["id"])
    assert await sweeps.escalate_waiting(db, 0) == 0  # once
    status, seen = await county.get(f"/api/referrals/{r['id']}")
    assert seen["escalated_at"] is not None and seen["status"] == "requested"
    status, seen = await county.get(f"/api/referrals/{ordinary['id']}")
    assert seen["escalated_at"] is None
    # An accepted one is never escalated.
    r2 = await refer_up(township, green_channel="stroke")
    await county.post(f"/api/referrals/{r2['id']}/accept")
    await sweeps.escalate_waiting(db, 0)
    status, seen = await county.get(f"/api/referrals/{r2['id']}")
    assert seen["escalated_at"] is None


async def test_expiry_by_the_system(api: Api) -> None:
    township, county = await api.login("township"), await api.login("county")
    village = await api.login("village")
    up = await refer_up(township)
    down = await refer_down(county)
    fresh = await refer_up(township)
    db = api.server.app[keys.DATABASE]
    async with db.write() as session:
        await session.execute(update(Referral).where(Referral.id.in_((up["id"], down["id"])))
                              .values(deadline=datetime.now(UTC) - timedelta(minutes=1)))
    assert await sweeps.expire_overdue(db) >= 2
    assert await sweeps.expire_overdue(db) == 0
    status, r = await township.get(f"/api/referrals/{up['id']}")
    assert r["status"] == "expired" and r["actions"] == []
    assert r["history"][-1] | {"at": None} == {
        "from_status": "requested", "to_status": "expired", "actor_id": None,
        "actor_name": None, "at": None, "note": sweeps.EXPIRY_NOTE}
    assert r["close_reason"] == sweeps.EXPIRY_NOTE and r["times"]["closed_at"]
    assert r["intervals"]["request_to_accept"]["minutes"] is None  # the clock stopped
    assert "referral.expired" in await _kinds(api, township.user, up["id"])
    assert "referral.expired" in await _kinds(api, county.user, down["id"])
    async with db.read() as session:
        f = await session.get(FollowUp, down["follow_up_id"])
        assert f is not None and f.status == "cancelled"
    status, err = await village.post(f"/api/referrals/{down['id']}/accept")
    assert status == 409
    status, r = await county.get(f"/api/referrals/{fresh['id']}")
    assert r["status"] == "requested"


class TestLiveSweep:
    """The scheduler runs the sweeps on its own, at the configured pace."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return with_settings(settings, referral_sweep_seconds=0.2,
                             referral_escalate_after_seconds=1)

    async def test_escalates_without_being_asked(self, api: Api) -> None:
        township, coordinator = await api.login("township"), await api.login("coordinator")
        r = await refer_up(township, green_channel="stroke")
        for _ in range(100):
            status, seen = await township.get(f"/api/referrals/{r['id']}")
            if seen["escalated_at"]:
                break
            await asyncio.sleep(0.1)
        assert seen["escalated_at"] is not None
        assert "referral.escalated" in await _kinds(api, coordinator.user, r["id"])


async def test_an_accepted_alert_is_settled_for_the_others_on_call(api: Api) -> None:
    """Two on call get the alert; one accepts: the other's alert is marked read (their banner
    goes) and they are told it is taken care of; the requester hears of the acceptance."""
    township, county = await api.login("township"), await api.login("county")
    radiology, coordinator = await api.login("county_radiology"), await api.login("coordinator")
    medicine = await _medicine(api, township)
    for who in (county, radiology):
        await _on_call(coordinator, medicine, who.user["id"])
    r = await refer_up(township, green_channel="stroke")
    status, _ = await county.post(f"/api/referrals/{r['id']}/accept")
    assert status == 200
    rows = [n for n in await notifications(api, radiology.user["id"])
            if n.resource_id == str(r["id"])]
    assert [n.kind for n in rows] == ["referral.green_channel", "referral.accepted"]
    assert rows[0].read_at is not None and rows[1].read_at is None
    mine = [n for n in await notifications(api, county.user["id"])
            if n.resource_id == str(r["id"])]
    assert [n.kind for n in mine] == ["referral.green_channel"]  # not told of their own act
    assert mine[0].read_at is not None
    assert await _kinds(api, township.user, r["id"]) == ["referral.accepted"]
