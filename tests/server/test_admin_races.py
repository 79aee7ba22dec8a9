"""Administration changes made at the same moment: the checks that come before a write (is the
name free? is this the last administrator?) hold on PostgreSQL as on SQLite, so two requests at
once get one success and one clear 409, never a 500 and never two of a name; what was replaced
is audited with what it was."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from tests.conftest import Api
from tests.server.directory_helpers import FIVE_LEVEL, SHALANG, alliances, audit_entries, by_name
from yilian.server.core import keys
from yilian.server.core.models import Institution, User


def _codes(answers: list[tuple[int, Any]]) -> list[tuple[int, str | None]]:
    return sorted((s, b["error"]["code"] if s >= 400 else None) for s, b in answers)


async def test_two_admins_demoting_each_other_at_once_leave_one(api: Api) -> None:
    admin = await api.login("admin")
    status, second = await admin.post("/api/users", {
        "username": "second_admin", "display_name": "Second", "role": "admin",
        "institution_id": (await by_name(admin))[SHALANG]["id"],
        "password": "first-time-pass-1"})
    assert status == 201, second
    other = await api.login("second_admin", "first-time-pass-1")
    status, _ = await other.post("/api/auth/password", {
        "old_password": "first-time-pass-1", "new_password": "second-admin-pass"})
    assert status == 200
    other = await api.login("second_admin", "second-admin-pass")
    first_id = admin.user["id"]
    answers = await asyncio.gather(
        admin.request("PATCH", f"/api/users/{second['id']}", {"role": "coordinator"}),
        other.request("PATCH", f"/api/users/{first_id}", {"active": False}))
    assert _codes(list(answers)) == [(200, None), (409, "last_admin")], answers
    async with api.server.app[keys.DATABASE].read() as session:
        left = await session.scalar(select(func.count()).select_from(User).where(
            User.role == "admin", User.active.is_(True)))
    assert left == 1


async def test_the_same_name_twice_at_once(api: Api) -> None:
    admin = await api.login("admin")
    inst = await by_name(admin)
    shalang = inst[SHALANG]["id"]
    answers = await asyncio.gather(*(admin.post("/api/institutions", {
        "name": "Twin Clinic" if i % 2 else "twin clinic", "level": "village",
        "parent_id": shalang}) for i in range(4)))
    assert _codes(list(answers)) == [(201, None)] + [(409, "name_taken")] * 3, answers
    async with api.server.app[keys.DATABASE].read() as session:
        assert await session.scalar(select(func.count()).select_from(Institution).where(
            func.lower(Institution.name) == "twin clinic")) == 1

    answers = await asyncio.gather(*(admin.post(f"/api/institutions/{shalang}/departments",
                                                {"name": "Twin Ward"}) for _ in range(3)))
    assert _codes(list(answers)) == [(201, None)] + [(409, "name_taken")] * 2, answers

    answers = await asyncio.gather(*(admin.post("/api/alliances", {
        "name": "Twin Alliance", "kind": "tight", "lead_institution_id": shalang})
        for _ in range(3)))
    assert _codes(list(answers)) == [(201, None)] + [(409, "name_taken")] * 2, answers

    answers = await asyncio.gather(*(admin.post("/api/modalities", {
        "ae_title": "TWIN_CT", "institution_id": shalang}) for _ in range(3)))
    assert _codes(list(answers)) == [(201, None)] + [(409, "ae_title_taken")] * 2, answers


async def test_members_and_visit_totals_replaced_at_once(api: Api) -> None:
    coordinator = await api.login("coordinator")
    rows = [{"institution_id": 5, "month": f"2023-{m:02d}", "visits": 100 + m}
            for m in range(1, 13)]
    answers = await asyncio.gather(*(coordinator.put("/api/stats/visits", {"totals": [
        {**r, "visits": r["visits"] + i} for r in rows]}) for i in range(3)))
    assert [s for s, _ in answers] == [200] * 3, answers
    # a replaced total is audited with what it was
    status, _ = await coordinator.put("/api/stats/visits", {"totals": [
        {"institution_id": 5, "month": "2023-01", "visits": 7}]})
    assert status == 200
    entry = (await audit_entries(api, "outpatient_visit_totals"))[-1]
    assert entry.detail["replaced"] == 1  # type: ignore[index]
    [was] = entry.detail["before"]  # type: ignore[index]
    assert (was["institution_id"], was["month"], was["now"]) == (5, "2023-01", 7)
    assert was["visits"] in (101, 102, 103)

    # (after the totals: the members' change may take institution 5 out of the alliance)
    admin = await api.login("admin")
    five = (await alliances(admin))[FIVE_LEVEL]
    members = five["member_ids"]
    answers = await asyncio.gather(*(admin.put(f"/api/alliances/{five['id']}/members", {
        "member_ids": members if i % 2 else members[:-1] if members[-1] != five[
            "lead_institution_id"] else members[1:]}) for i in range(4)))
    assert [s for s, _ in answers] == [200] * 4, answers


async def test_a_new_lead_joining_is_audited_as_a_member(api: Api) -> None:
    admin = await api.login("admin")
    inst = await by_name(admin)
    five = (await alliances(admin))[FIVE_LEVEL]
    outsider = next(i["id"] for i in inst.values() if i["id"] not in five["member_ids"])
    status, body = await admin.request("PATCH", f"/api/alliances/{five['id']}",
                                       {"lead_institution_id": outsider})
    assert status == 200 and outsider in body["member_ids"]
    entry = [e for e in await audit_entries(api, "alliance")
             if e.resource_id == str(five["id"])][-1]
    assert entry.action == "update"
    assert entry.detail["added"] == [outsider]  # type: ignore[index]
    assert outsider not in entry.detail["before"]["member_ids"]  # type: ignore[index]
    assert outsider in entry.detail["after"]["member_ids"]  # type: ignore[index]
