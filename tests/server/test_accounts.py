"""Accounts: creating users (who may, every rule), the first-login password change and its
policy, resets, deactivation, unlock, and the admin's last-admin guard."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from yilian.server.core import keys
from yilian.server.core.models import AuditEntry, Institution, User

GOOD = "long-enough-secret-42"


async def _institution(api: Any, name: str) -> int:
    async with api.server.app[keys.DATABASE].read() as session:
        return (await session.execute(select(Institution.id).where(Institution.name == name))
                ).scalar_one()


async def _user_count(api: Any) -> int:
    async with api.server.app[keys.DATABASE].read() as session:
        return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


def _new(institution: int, **changes: Any) -> dict[str, Any]:
    return {"username": "liwei", "display_name": "Li Wei (李伟)", "role": "township_doctor",
            "institution_id": institution, "password": "temporary-pass-1", **changes}


async def test_a_new_user_must_choose_a_password_before_anything_else(api: Any) -> None:
    admin = await api.login("admin")
    shalang = await _institution(api, "Shalang Town Central Health Centre")
    status, created = await admin.post("/api/users", _new(shalang))
    assert status == 201, created
    assert created["must_change_password"] and created["active"] and "password" not in created
    assert "password_hash" not in created and created["temporary_password"] is None

    status, body = await api.post("/api/auth/login",
                                  {"username": "LiWei ", "password": "temporary-pass-1"})
    assert status == 200 and body["must_change_password"] is True, body
    liwei = type(api)(api.server, api.http, body["token"], body["user"])
    for path in ("/api/consultations", "/api/experts", "/api/notifications"):
        status, err = await liwei.get(path)
        assert status == 403 and err["error"]["code"] == "password_change_required", (path, err)
    assert (await liwei.get("/api/me"))[0] == 200

    status, err = await liwei.post("/api/auth/password", {"old_password": "temporary-pass-1",
                                                          "new_password": "short"})
    assert status == 422 and err["error"]["code"] == "password_too_short"
    status, me = await liwei.post("/api/auth/password", {"old_password": "temporary-pass-1",
                                                         "new_password": GOOD})
    assert status == 200 and me["username"] == "liwei", me
    assert (await liwei.get("/api/consultations"))[0] == 200
    # The old password is gone; the new one logs in without the flag.
    assert (await api.post("/api/auth/login", {"username": "liwei",
                                               "password": "temporary-pass-1"}))[0] == 401
    status, again = await api.post("/api/auth/login", {"username": "liwei", "password": GOOD})
    assert status == 200 and again["must_change_password"] is False


POLICY = [
    ("abc", "password_too_short"),
    ("x" * 257, "password_too_long"),
    ("village", "password_too_short"),
    ("!!village2026", "password_is_username"),
    ("EGALLIV-2026", "password_is_username"),
    ("1234567890", "password_too_common"),
    ("Password123", "password_too_common"),
    ("aaaaaaaaaaaa", "password_too_common"),
    ("abababababab", "password_too_common"),
]


async def test_the_password_policy(api: Any) -> None:
    village = await api.login("village")
    for new, code in POLICY:
        status, err = await village.post("/api/auth/password", {"old_password": "yilian-demo",
                                                                "new_password": new})
        assert status == 422 and err["error"]["code"] == code, (new, err)
        assert err["error"]["details"]["errors"][0]["loc"] == ["body", "new_password"]


async def test_password_change_refuses_the_same_password_and_a_wrong_old_one(api: Any) -> None:
    county = await api.login("county")
    status, err = await county.post("/api/auth/password", {"old_password": "wrong-password",
                                                           "new_password": GOOD})
    assert status == 422 and err["error"]["code"] == "wrong_password"
    assert (await county.post("/api/auth/password", {"old_password": "yilian-demo",
                                                     "new_password": GOOD}))[0] == 200
    status, err = await county.post("/api/auth/password", {"old_password": GOOD,
                                                           "new_password": GOOD})
    assert status == 422 and err["error"]["code"] == "password_reused"


async def test_changing_the_password_ends_the_other_sessions(api: Any) -> None:
    first, second = await api.login("township"), await api.login("township")
    assert (await first.post("/api/auth/password", {"old_password": "yilian-demo",
                                                    "new_password": GOOD}))[0] == 200
    assert (await first.get("/api/me"))[0] == 200
    status, err = await second.get("/api/me")
    assert status == 401 and err["error"]["code"] == "invalid_token"


async def test_demo_accounts_keep_working(api: Any) -> None:
    for name in ("village", "expert", "admin", "coordinator"):
        status, body = await api.post("/api/auth/login", {"username": name,
                                                          "password": "yilian-demo"})
        assert status == 200 and body["must_change_password"] is False


BAD_USERS = [
    ({"username": "ab"}, 422, "invalid_username"),
    ({"username": "li wei"}, 422, "invalid_username"),
    ({"username": "李伟"}, 422, "invalid_username"),
    ({"username": "village"}, 409, "username_taken"),
    ({"institution_id": 99999}, 422, "unknown_institution"),
    ({"role": "specialist"}, 422, "specialties_required"),
    ({"role": "specialist", "specialties": ["Cardiology"]}, 422, "validation_error"),
    ({"role": "superuser"}, 422, "validation_error"),
    ({"department": "No Such Department"}, 422, "unknown_department"),
    ({"department": 99999}, 422, "unknown_department"),
    ({"password": "1234567890"}, 422, "password_too_common"),
    ({"password": "liwei12345"}, 422, "password_is_username"),
    ({"password": "short"}, 422, "password_too_short"),
    ({"display_name": "   "}, 422, "invalid_display_name"),
    ({"institution_id": "1"}, 422, "validation_error"),
    ({"extra": True}, 422, "validation_error"),
    ({"active": False}, 422, "validation_error"),
    ({"specialties": ["x" * 60]}, 422, "validation_error"),
]


async def test_bad_new_users_are_refused_and_nothing_is_stored(api: Any) -> None:
    admin = await api.login("admin")
    shalang = await _institution(api, "Shalang Town Central Health Centre")
    before = await _user_count(api)
    for changes, status, code in BAD_USERS:
        got, err = await admin.post("/api/users", _new(shalang, **changes))
        assert (got, err["error"]["code"]) == (status, code), (changes, err)
    assert await _user_count(api) == before


async def test_malformed_bodies(api: Any) -> None:
    admin = await api.login("admin")
    before = await _user_count(api)
    for data, status, code in [(b"{", 400, "invalid_json"), (b"[]", 422, "validation_error"),
                               (b'{"username": 1}', 422, "validation_error")]:
        got, err = await admin.post("/api/users", data=data,
                                    headers={"Content-Type": "application/json"})
        assert (got, err["error"]["code"]) == (status, code), err
    got, err = await admin.post("/api/users", data=b"username=x",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert got == 415
    got, err = await admin.request("PATCH", "/api/users/abc", {"active": False})
    assert got == 404
    got, err = await admin.request("PATCH", "/api/users/99999", {"active": False})
    assert got == 404 and err["error"]["code"] == "not_found"
    got, err = await admin.request("PATCH", f"/api/users/{admin.user['id']}", {"role": None})
    assert got in (409, 422)
    assert await _user_count(api) == before


async def test_departments_by_name_or_id_belong_to_the_institution(api: Any) -> None:
    admin = await api.login("admin")
    gd = await _institution(api, "Guangdong Provincial People's Hospital")
    status, expert = await admin.get(f"/api/users/{(await api.login('expert')).user['id']}")
    assert status == 200 and expert["department_id"], expert
    status, made = await admin.post("/api/users", _new(
        gd, username="cardio2", role="specialist", specialties=["cardiology"],
        department=expert["department_id"], title="主治医师"))
    assert status == 201 and made["department_id"] == expert["department_id"], made
    shalang = await _institution(api, "Shalang Town Central Health Centre")
    status, err = await admin.post("/api/users", _new(shalang, username="cardio3",
                                                      department=expert["department_id"]))
    assert status == 422 and err["error"]["code"] == "unknown_department"


async def test_a_coordinator_manages_only_their_alliance_and_up_to_coordinator(api: Any) -> None:
    coordinator = await api.login("coordinator")
    shalang = await _institution(api, "Shalang Town Central Health Centre")
    guilin_doctor = await api.login("guilin_doctor")
    admin = await api.login("admin")
    status, made = await coordinator.post("/api/users", _new(shalang))
    assert status == 201, made
    status, err = await coordinator.post("/api/users", _new(shalang, username="boss",
                                                            role="admin"))
    assert status == 403 and err["error"]["code"] == "role_not_allowed"
    status, err = await coordinator.post("/api/users", _new(
        guilin_doctor.user["institution_id"], username="far"))
    assert status == 403 and err["error"]["code"] == "outside_alliance"
    # Accounts of other alliances are not visible at all.
    status, _ = await coordinator.get(f"/api/users/{guilin_doctor.user['id']}")
    assert status == 404
    status, err = await coordinator.request("PATCH", f"/api/users/{guilin_doctor.user['id']}",
                                            {"active": False})
    assert status == 404
    status, listed = await coordinator.get("/api/users", params={"limit": "200"})
    assert status == 200 and guilin_doctor.user["id"] not in [u["id"] for u in listed]
    # Nobody is raised above coordinator by a coordinator, and an admin is not theirs to change.
    status, err = await coordinator.request("PATCH", f"/api/users/{made['id']}",
                                            {"role": "admin"})
    assert status == 403 and err["error"]["code"] == "role_not_allowed"
    if admin.user["institution_id"] in {u["institution_id"] for u in listed}:
        status, err = await coordinator.request("PATCH", f"/api/users/{admin.user['id']}",
                                                {"display_name": "x"})
        assert status == 403 and err["error"]["code"] == "role_not_allowed"
    status, err = await coordinator.request("PATCH", f"/api/users/{made['id']}",
                                            {"institution_id": guilin_doctor.user[
                                                "institution_id"]})
    assert status == 403 and err["error"]["code"] == "outside_alliance"
    # Nor to coordinator: only an admin makes coordinators (one made at a partner
    # institution would reach that partner's other alliances).
    status, err = await coordinator.request("PATCH", f"/api/users/{made['id']}",
                                            {"role": "coordinator", "title": "护士长"})
    assert status == 403 and err["error"]["code"] == "role_not_allowed"
    status, err = await coordinator.post("/api/users", _new(made["institution_id"],
                                                            username="liwei2",
                                                            role="coordinator"))
    assert status == 403 and err["error"]["code"] == "role_not_allowed"
    status, changed = await coordinator.request("PATCH", f"/api/users/{made['id']}",
                                                {"title": "护士长"})
    assert status == 200 and changed["title"] == "护士长"


async def test_clinicians_manage_no_accounts(api: Any) -> None:
    village = await api.login("village")
    for method, path, body in [("GET", "/api/users", None), ("POST", "/api/users", _new(1)),
                               ("GET", f"/api/users/{village.user['id']}", None),
                               ("PATCH", f"/api/users/{village.user['id']}", {"title": "x"})]:
        status, err = await village.request(method, path, body)
        assert status == 403 and err["error"]["code"] == "forbidden", (method, path, err)


async def test_search_and_paging(api: Any) -> None:
    admin = await api.login("admin")
    status, page = await admin.get("/api/users", params={"q": "guilin_d"})
    assert status == 200 and [u["username"] for u in page] == ["guilin_doctor"]
    status, page = await admin.get("/api/users", params={"q": "GUILIN"})
    assert status == 200 and len(page) > 1 and all("guilin" in u["username"] for u in page)
    status, page = await admin.get("/api/users", params={"role": "specialist", "limit": "1"})
    assert status == 200 and len(page) == 1
    status, page2 = await admin.get("/api/users", params={"role": "specialist", "limit": "1",
                                                          "offset": "1"})
    assert status == 200 and page2 and page2[0]["id"] != page[0]["id"]
    status, page = await admin.get("/api/users", params={"q": "%"})
    assert status == 200 and page == []
    for params in ({"limit": "0"}, {"limit": "x"}, {"active": "maybe"}, {"role": "king"},
                   {"institution_id": "-1"}):
        status, err = await admin.get("/api/users", params=params)
        assert status == 422, (params, err)


async def test_reset_and_admin_set_passwords_must_be_changed(api: Any) -> None:
    admin = await api.login("admin")
    village = await api.login("village")
    uid = village.user["id"]
    status, reset = await admin.request("PATCH", f"/api/users/{uid}", {"reset_password": True})
    assert status == 200 and reset["must_change_password"], reset
    temporary = reset["temporary_password"]
    assert temporary and len(temporary) >= 10
    assert (await village.get("/api/me"))[0] == 401  # the reset ended the sessions
    status, body = await api.post("/api/auth/login", {"username": "village",
                                                      "password": temporary})
    assert status == 200 and body["must_change_password"] is True
    status, err = await admin.request("PATCH", f"/api/users/{uid}", {"password": "123"})
    assert status == 422 and err["error"]["code"] == "password_too_short"
    status, got = await admin.request("PATCH", f"/api/users/{uid}",
                                      {"password": "chosen-by-admin-7"})
    assert status == 200 and got["temporary_password"] is None
    status, body = await api.post("/api/auth/login", {"username": "village",
                                                      "password": "chosen-by-admin-7"})
    assert status == 200 and body["must_change_password"] is True


async def test_deactivation_ends_every_token_at_once_and_login(api: Any) -> None:
    admin = await api.login("admin")
    one, two = await api.login("township"), await api.login("township")
    assert (await one.get("/api/me"))[0] == 200  # cached in the token cache now
    status, body = await admin.request("PATCH", f"/api/users/{one.user['id']}",
                                       {"active": False})
    assert status == 200 and body["active"] is False
    for client in (one, two):
        status, err = await client.get("/api/me")
        assert status == 401 and err["error"]["code"] == "invalid_token"
    status, err = await api.post("/api/auth/login", {"username": "township",
                                                     "password": "yilian-demo"})
    assert status == 401 and err["error"]["code"] == "invalid_credentials"
    assert (await admin.request("PATCH", f"/api/users/{one.user['id']}",
                                {"active": True}))[0] == 200
    assert (await one.get("/api/me"))[0] == 401  # ended for good
    assert (await api.login("township")).token


async def test_an_admin_cannot_lock_themselves_out(api: Any) -> None:
    admin = await api.login("admin")
    for change in ({"active": False}, {"role": "coordinator"}):
        status, err = await admin.request("PATCH", f"/api/users/{admin.user['id']}", change)
        assert status == 409 and err["error"]["code"] == "own_account", err
    status, me = await admin.request("PATCH", f"/api/users/{admin.user['id']}",
                                     {"display_name": "系统管理员", "locale": "zh-CN"})
    assert status == 200 and me["display_name"] == "系统管理员"


async def test_changes_are_audited_with_before_and_after_and_no_secret(api: Any) -> None:
    admin = await api.login("admin")
    village = await api.login("village")
    await admin.request("PATCH", f"/api/users/{village.user['id']}",
                        {"title": "乡村医生", "reset_password": True})
    await api.flush_audit()
    async with api.server.app[keys.DATABASE].read() as session:
        entry = (await session.execute(select(AuditEntry).where(
            AuditEntry.action == "update_user"))).scalar_one()
    assert entry.user_id == admin.user["id"] and entry.resource_id == str(village.user["id"])
    assert entry.detail is not None
    assert entry.detail["after"]["title"] == "乡村医生" and entry.detail["password_reset"]
    assert entry.detail["before"]["must_change_password"] is False
    assert "hash" not in str(entry.detail) and "temporary" not in str(entry.detail)
