"""The alliance directory: institutions (levels, parents, no cycles), departments, alliances
and their members, what each caller may do, every change audited with before and after."""

from __future__ import annotations

from typing import Any

from tests.server.directory_helpers import (
    DIANBAI,
    FIVE_LEVEL,
    GDPH,
    GUILIN,
    SHALANG,
    YANGSHUO,
    alliances,
    audit_entries,
    by_name,
)


async def test_admin_creates_an_institution_under_a_higher_level(api) -> None:
    admin = await api.login("admin")
    inst = await by_name(admin)
    status, body = await admin.post("/api/institutions", {
        "name": "Xiadong Village Clinic", "local_name": "霞洞村卫生站", "level": "village",
        "parent_id": inst[SHALANG]["id"]})
    assert status == 201, body
    assert body["level"] == "village" and body["parent_id"] == inst[SHALANG]["id"]
    assert body["local_name"] == "霞洞村卫生站" and body["departments"] == []
    # listed for everyone at once
    assert "Xiadong Village Clinic" in await by_name(await api.login("village"))
    entry = (await audit_entries(api, "institution"))[-1]
    assert entry.action == "create" and entry.resource_id == str(body["id"])
    assert entry.detail == {"after": {"name": "Xiadong Village Clinic",
                                      "local_name": "霞洞村卫生站", "level": "village",
                                      "parent_id": inst[SHALANG]["id"]}}


async def test_parent_rules(api) -> None:
    admin = await api.login("admin")
    inst = await by_name(admin)
    cases: list[tuple[dict[str, Any], int, str]] = [
        # a parent must be of a higher level
        ({"name": "A", "level": "county", "parent_id": inst[SHALANG]["id"]}, 422,
         "invalid_parent_level"),
        ({"name": "B", "level": "county", "parent_id": inst[DIANBAI]["id"]}, 422,
         "invalid_parent_level"),
        ({"name": "C", "level": "city", "parent_id": 999999}, 422, "unknown_institution"),
        ({"name": GDPH.upper(), "level": "province"}, 409, "name_taken"),
        ({"name": "D", "level": "hamlet"}, 422, "validation_error"),
        ({"name": "   ", "level": "city"}, 422, "validation_error"),
        ({"name": "E", "level": "city", "parent_id": "1"}, 422, "validation_error"),
        ({"name": "x" * 201, "level": "city"}, 422, "validation_error"),
        ({"name": "F", "level": "city", "extra": 1}, 422, "validation_error"),
    ]
    for body, want, code in cases:
        status, resp = await admin.post("/api/institutions", body)
        assert (status, resp["error"]["code"]) == (want, code), (body, resp)
    assert {i["name"] for i in (await by_name(admin)).values()} == set(inst)

    # changing: no cycles, levels kept consistent with parent and branches
    gdph, dianbai = inst[GDPH]["id"], inst[DIANBAI]["id"]
    maoming = inst["Maoming People's Hospital"]["id"]
    for patch, code in (({"parent_id": maoming}, "invalid_parent_level"),
                        ({"parent_id": dianbai}, "institution_cycle"),
                        ({"parent_id": gdph}, "institution_cycle"),
                        ({"level": "village"}, "invalid_parent_level"),
                        ({"name": None}, "validation_error")):
        status, resp = await admin.request("PATCH", f"/api/institutions/{gdph}", patch)
        assert status == 422 and resp["error"]["code"] == code, (patch, resp)
    # Dianbai (county, under the province) cannot become a province with a province parent
    status, resp = await admin.request("PATCH", f"/api/institutions/{dianbai}",
                                       {"level": "province"})
    assert status == 422 and resp["error"]["code"] == "invalid_parent_level"
    status, resp = await admin.request("PATCH", f"/api/institutions/{dianbai}",
                                       {"level": "city", "local_name": "电白区人民医院"})
    assert status == 200 and resp["level"] == "city" and resp["departments"], resp
    status, resp = await admin.request("PATCH", f"/api/institutions/{dianbai}",
                                       {"parent_id": None})
    assert status == 200 and resp["parent_id"] is None
    status, resp = await admin.request("PATCH", "/api/institutions/999999", {"name": "Z"})
    assert status == 404
    entries = [e for e in await audit_entries(api, "institution")
               if e.resource_id == str(dianbai)]
    assert [e.detail["before"]["level"] for e in entries] == ["county", "city"]  # type: ignore[index]
    assert entries[1].detail["after"]["parent_id"] is None  # type: ignore[index]


async def test_a_coordinator_keeps_the_institutions_of_their_alliance_only(api) -> None:
    coordinator = await api.login("coordinator")
    inst = await by_name(coordinator)
    status, perms = await coordinator.get("/api/me/permissions")
    assert status == 200 and perms["administration"] and not perms["all_institutions"]
    assert not perms["create_institutions"] and not perms["manage_alliances"]
    assert inst[DIANBAI]["id"] in perms["institution_ids"]
    assert inst[GUILIN]["id"] not in perms["institution_ids"]

    status, body = await coordinator.request("PATCH", f"/api/institutions/{inst[SHALANG]['id']}",
                                             {"local_name": "沙琅镇中心卫生院（新）"})
    assert status == 200, body
    status, body = await coordinator.request("PATCH", f"/api/institutions/{inst[GUILIN]['id']}",
                                             {"local_name": "x"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    # nor may a kept institution be moved under one they do not keep
    status, body = await coordinator.request("PATCH", f"/api/institutions/{inst[SHALANG]['id']}",
                                             {"parent_id": inst[YANGSHUO]["id"]})
    assert status == 403
    status, body = await coordinator.post("/api/institutions", {"name": "N", "level": "city"})
    assert status == 403
    status, body = await coordinator.post(f"/api/institutions/{inst[SHALANG]['id']}/departments",
                                          {"name": "Rehabilitation", "specialty": "rehabilitation"})
    assert status == 201 and body["specialty"] == "rehabilitation"
    status, body = await coordinator.post(f"/api/institutions/{inst[GUILIN]['id']}/departments",
                                          {"name": "Rehabilitation"})
    assert status == 403

    for user in ("village", "expert", "guilin_doctor"):
        client = await api.login(user)
        status, perms = await client.get("/api/me/permissions")
        assert status == 200 and not perms["administration"] and perms["institution_ids"] == []
        assert perms["availability"] is (user == "expert")


async def test_departments_rename_head_and_remove_when_unused(api) -> None:
    admin = await api.login("admin")
    inst = await by_name(admin)
    shalang = inst[SHALANG]["id"]
    status, dept = await admin.post(f"/api/institutions/{shalang}/departments",
                                    {"name": "康复科", "specialty": "rehabilitation"})
    assert status == 201
    status, body = await admin.post(f"/api/institutions/{shalang}/departments", {"name": "康复科"})
    assert status == 409 and body["error"]["code"] == "name_taken"
    status, body = await admin.post(f"/api/institutions/{shalang}/departments",
                                    {"name": "X", "specialty": "Not A Code"})
    assert status == 422
    township = await api.login("township")
    status, body = await admin.request("PATCH", f"/api/departments/{dept['id']}",
                                       {"name": "Rehab", "specialty": None,
                                        "head_id": township.user["id"]})
    assert status == 200 and body["head_id"] == township.user["id"] and body["specialty"] is None
    expert = await api.login("expert")  # not staff of Shalang
    status, body = await admin.request("PATCH", f"/api/departments/{dept['id']}",
                                       {"head_id": expert.user["id"]})
    assert status == 422 and body["error"]["code"] == "not_staff"
    status, listed = await admin.get(f"/api/institutions/{shalang}/departments")
    assert status == 200
    used = {d["name"]: d["in_use"] for d in listed}
    assert used == {"General Practice": True, "Rehab": False}
    gp = next(d for d in listed if d["name"] == "General Practice")
    status, body = await admin.request("DELETE", f"/api/departments/{gp['id']}")
    assert status == 409 and body["error"]["code"] == "department_in_use"
    status, _ = await admin.request("DELETE", f"/api/departments/{dept['id']}")
    assert status == 204
    status, _ = await admin.request("DELETE", f"/api/departments/{dept['id']}")
    assert status == 404
    actions = [(e.action, e.resource_id) for e in await audit_entries(api, "department")]
    assert actions[-3:] == [("create", str(dept["id"])), ("update", str(dept["id"])),
                            ("delete", str(dept["id"]))]


async def test_alliances_and_their_members(api) -> None:
    admin = await api.login("admin")
    inst = await by_name(admin)
    gdph, dianbai, guilin = inst[GDPH]["id"], inst[DIANBAI]["id"], inst[GUILIN]["id"]
    status, body = await admin.post("/api/alliances", {
        "name": "South China Cardiology Alliance", "kind": "specialty",
        "lead_institution_id": gdph, "member_ids": [guilin]})
    assert status == 422 and body["error"]["code"] == "specialty_required"
    status, a = await admin.post("/api/alliances", {
        "name": "South China Cardiology Alliance", "kind": "specialty",
        "specialty": "cardiology", "lead_institution_id": gdph, "member_ids": [guilin, guilin]})
    assert status == 201 and a["member_ids"] == sorted([gdph, guilin]), a
    status, body = await admin.post("/api/alliances", {
        "name": "south china cardiology alliance", "kind": "tight", "lead_institution_id": gdph})
    assert status == 409 and body["error"]["code"] == "name_taken"
    status, body = await admin.put(f"/api/alliances/{a['id']}/members", {"member_ids": [guilin]})
    assert status == 422 and body["error"]["code"] == "lead_not_member"
    status, body = await admin.put(f"/api/alliances/{a['id']}/members",
                                   {"member_ids": [gdph, 999999]})
    assert status == 422 and body["error"]["code"] == "unknown_institution"
    assert body["error"]["details"]["unknown_ids"] == [999999]
    status, body = await admin.put(f"/api/alliances/{a['id']}/members",
                                   {"member_ids": [gdph, dianbai]})
    assert status == 200 and body["member_ids"] == sorted([gdph, dianbai])
    # a new lead joins its alliance
    status, body = await admin.request("PATCH", f"/api/alliances/{a['id']}",
                                       {"lead_institution_id": guilin, "name": "SC Cardiology"})
    assert status == 200 and guilin in body["member_ids"] and body["name"] == "SC Cardiology"
    assert (await alliances(admin))["SC Cardiology"]["member_ids"] == sorted(
        [gdph, dianbai, guilin])
    status, body = await admin.request("PATCH", f"/api/alliances/{a['id']}", {"kind": None})
    assert status == 422
    status, body = await admin.request("PATCH", f"/api/alliances/{a['id']}",
                                       {"specialty": None})
    assert status == 422 and body["error"]["code"] == "specialty_required"
    status, body = await admin.put("/api/alliances/999999/members", {"member_ids": [gdph]})
    assert status == 404
    entries = [e for e in await audit_entries(api, "alliance") if e.resource_id == str(a["id"])]
    assert [e.action for e in entries] == ["create", "set_members", "update"]
    members = entries[1].detail
    assert members == {"before": sorted([gdph, guilin]), "after": sorted([gdph, dianbai]),
                       "added": [dianbai], "removed": [guilin]}
    # coordinators and clinicians may not change alliances
    five = (await alliances(admin))[FIVE_LEVEL]
    for user in ("coordinator", "county"):
        client = await api.login(user)
        status, body = await client.put(f"/api/alliances/{five['id']}/members",
                                        {"member_ids": five["member_ids"]})
        assert status == 403, body


async def test_availability_says_who_may_change_it(api) -> None:
    """The Guangdong coordinator is no longer offered Guilin experts' availability."""
    coordinator = await api.login("coordinator")
    status, experts = await coordinator.get("/api/experts")
    assert status == 200
    inst = await by_name(coordinator)
    guilin = next(e for e in experts if e["institution_id"] == inst[GUILIN]["id"])
    gdph = next(e for e in experts if e["institution_id"] == inst[GDPH]["id"])
    status, av = await coordinator.get(f"/api/experts/{guilin['id']}/availability")
    assert status == 200 and av["can_edit"] is False
    status, av = await coordinator.get(f"/api/experts/{gdph['id']}/availability")
    assert status == 200 and av["can_edit"] is True
    expert = await api.login("expert")
    status, av = await expert.get(f"/api/experts/{expert.user['id']}/availability")
    assert av["can_edit"] is True
    status, av = await expert.get(f"/api/experts/{gdph['id']}/availability")
    assert av["can_edit"] is (gdph["id"] == expert.user["id"])
