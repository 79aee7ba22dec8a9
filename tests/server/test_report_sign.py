"""Signing a report with the password re-entered: the signer as at signing, wrong passwords
refused, audited and rate-limited together with logins, and the contract's empty body."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from tests.conftest import Api
from tests.server.helpers import book
from yilian.server.core.db import Database
from yilian.server.core.models import AuditEntry, User
from yilian.server.core.settings import Settings
from yilian.server.demo import DEMO_PASSWORD

REPORT = {"findings": "ST depression V4-V6", "impression": "Stable angina",
          "recommendations": "Aspirin, statin; refer for exercise test"}
SIGNER_FIELDS = ("signer_name", "signer_title", "signer_institution", "signed_with_password")


async def drafted(api: Api) -> tuple[Api, Api, int]:
    """village books the expert, who accepts, starts and writes a draft; returns the ids."""
    village, expert = await api.login("village"), await api.login("expert")
    c = await book(village, expert.user["id"])
    cid = c["id"]
    assert (await expert.post(f"/api/consultations/{cid}/accept", {}))[0] == 200
    assert (await village.post(f"/api/consultations/{cid}/start"))[0] == 200
    status, body = await expert.post(f"/api/consultations/{cid}/report", REPORT)
    assert status == 200, body
    return village, expert, cid


def sign_path(cid: int) -> str:
    return f"/api/consultations/{cid}/report/sign"


async def audit_actions(api: Api, settings: Settings, cid: int) -> list[tuple[str, Any]]:
    await api.flush_audit()
    db = Database(settings.resolved_database_url)
    try:
        async with db.read() as session:
            rows = (await session.execute(
                select(AuditEntry.action, AuditEntry.detail, AuditEntry.patient_id)
                .where(AuditEntry.resource_type == "consultation",
                       AuditEntry.resource_id == str(cid))
                .order_by(AuditEntry.id))).all()
    finally:
        await db.close()
    return [(a, d) for a, d, _ in rows]


async def test_sign_with_the_password_snapshots_the_signer(api: Api, settings: Settings) -> None:
    village, expert, cid = await drafted(api)
    status, body = await expert.post(sign_path(cid), {"password": DEMO_PASSWORD})
    assert status == 200, body
    v = body["current"]
    assert v["signed"] and v["version"] == 1 and v["corrects_version"] is None
    assert v["signed_at"] is not None and v["signed_by_id"] == expert.user["id"]
    assert v["signer_name"] == "Prof. Zhou Jianhua (周建华)"
    assert v["signer_title"] == "Chief Physician"
    assert v["signer_institution"] == "广东省人民医院"
    assert v["signed_with_password"] is True
    # The requesting doctor reads the same signer, signed time and version.
    status, got = await village.get(f"/api/consultations/{cid}/report")
    assert status == 200 and got["current"] == v
    actions = await audit_actions(expert, settings, cid)
    assert ("sign_report", {"version": 1, "with_password": True}) in actions


async def test_a_wrong_password_signs_nothing_and_is_audited(api: Api,
                                                            settings: Settings) -> None:
    village, expert, cid = await drafted(api)
    status, body = await expert.post(sign_path(cid), {"password": "not-my-password"})
    assert status == 403 and body["error"]["code"] == "invalid_password", body
    status, body = await expert.get(f"/api/consultations/{cid}/report")
    assert status == 200 and not body["current"]["signed"]
    assert body["current"]["signer_name"] is None and not body["current"]["signed_with_password"]
    assert (await village.get(f"/api/consultations/{cid}/report"))[0] == 404
    status, c = await expert.get(f"/api/consultations/{cid}")
    assert c["report_status"] == "draft"
    actions = await audit_actions(expert, settings, cid)
    assert ("sign_report_refused", {"version": 1, "reason": "invalid_password"}) in actions
    assert not [a for a, _ in actions if a == "sign_report"]
    # The right one then signs.
    status, body = await expert.post(sign_path(cid), {"password": DEMO_PASSWORD})
    assert status == 200 and body["current"]["signed_with_password"]


async def test_wrong_passwords_count_as_failed_logins(api: Api, settings: Settings) -> None:
    _, expert, cid = await drafted(api)
    limit = settings.auth.login_attempts_per_minute
    # A good password clears the account's failures, as a good login does; so does signing.
    for _ in range(limit - 1):
        status, body = await expert.post(sign_path(cid), {"password": "guess"})
        assert status == 403 and body["error"]["code"] == "invalid_password"
    status, body = await api.post("/api/auth/login", {"username": "expert", "password": "x"})
    assert status == 401  # the tenth failure: the account is now at its limit
    status, body = await expert.post(sign_path(cid), {"password": DEMO_PASSWORD})
    assert status == 429 and body["error"]["code"] == "too_many_requests", body
    assert body["error"]["details"]["scope"] == "account"
    # Logging in is locked for the account too: signing is no way around the limit.
    status, body = await api.post("/api/auth/login",
                                  {"username": "expert", "password": DEMO_PASSWORD})
    assert status == 429
    status, body = await expert.get(f"/api/consultations/{cid}/report")
    assert status == 200 and not body["current"]["signed"]
    actions = await audit_actions(expert, settings, cid)
    refused = [d["reason"] for a, d in actions if a == "sign_report_refused"]
    assert refused == ["invalid_password"] * (limit - 1) + ["too_many_attempts"]


async def test_a_right_password_clears_earlier_failures(api: Api, settings: Settings) -> None:
    _, expert, cid = await drafted(api)
    limit = settings.auth.login_attempts_per_minute
    for _ in range(limit - 1):
        assert (await expert.post(sign_path(cid), {"password": "guess"}))[0] == 403
    status, body = await expert.post(sign_path(cid), {"password": DEMO_PASSWORD})
    assert status == 200, body
    # counting starts again from nothing (below the account's lockout, which is sooner)
    for _ in range(min(limit, settings.auth.lockout_attempts) - 1):
        status, body = await api.post("/api/auth/login", {"username": "expert",
                                                          "password": "guess"})
        assert status == 401
    assert (await api.post("/api/auth/login",
                           {"username": "expert", "password": DEMO_PASSWORD}))[0] == 200


async def test_an_empty_body_still_signs_without_the_password(api: Api) -> None:
    village, expert, cid = await drafted(api)
    status, body = await expert.post(sign_path(cid))  # no body, no content type: api.md
    assert status == 200, body
    v = body["current"]
    assert v["signed"] and v["signed_with_password"] is False
    assert v["signer_name"] == expert.user["display_name"] and v["signer_title"]
    # An empty JSON object is the same; so is a body of whitespace.
    await expert.post(f"/api/consultations/{cid}/report", REPORT | {"impression": "Angina"})
    status, body = await expert.post(sign_path(cid), {})
    assert status == 200 and body["current"]["version"] == 2
    assert body["current"]["signed_with_password"] is False
    await expert.post(f"/api/consultations/{cid}/report", REPORT)
    status, body = await expert.post(sign_path(cid), data=b"  ",
                                     headers={"Content-Type": "application/json"})
    assert status == 200 and body["current"]["version"] == 3


async def test_strict_input(api: Api) -> None:
    _, expert, cid = await drafted(api)
    for bad in ({"password": 123}, {"password": None}, {"password": ""},
                {"password": DEMO_PASSWORD, "extra": 1}, {"pass": DEMO_PASSWORD},
                {"password": ["yilian-demo"]}, {"password": "x" * 257}, [], "yilian-demo"):
        status, body = await expert.post(sign_path(cid), bad)
        assert status == 422 and body["error"]["code"] == "validation_error", (bad, body)
    status, body = await expert.post(sign_path(cid), data=b'{"password": ',
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"]["code"] == "invalid_json"
    status, body = await expert.post(sign_path(cid), data=b"password=yilian-demo",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    status, body = await expert.get(f"/api/consultations/{cid}/report")
    assert not body["current"]["signed"]  # nothing signed by any of them


async def test_only_the_expert_signs_and_only_a_draft(api: Api) -> None:
    village, expert, cid = await drafted(api)
    county = await api.login("county")  # another specialist, not this consultation's expert
    status, body = await village.post(sign_path(cid), {"password": DEMO_PASSWORD})
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await county.post(sign_path(cid), {"password": DEMO_PASSWORD})
    assert status == 404  # not visible to them at all
    # A non-author's wrong password is refused as not theirs to sign, and not counted.
    status, body = await village.post(sign_path(cid), {"password": "guess"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert (await expert.post(sign_path(cid), {"password": DEMO_PASSWORD}))[0] == 200
    status, body = await expert.post(sign_path(cid), {"password": DEMO_PASSWORD})
    assert status == 409 and body["error"]["code"] == "nothing_to_sign"
    # Already signed: a wrong password is not even tried (nothing to sign comes first).
    status, body = await expert.post(sign_path(cid), {"password": "guess"})
    assert status == 409 and body["error"]["code"] == "nothing_to_sign"
    assert (await expert.post("/api/consultations/999999/report/sign",
                              {"password": DEMO_PASSWORD}))[0] == 404


async def test_versions_keep_their_own_signer(api: Api, settings: Settings) -> None:
    village, expert, cid = await drafted(api)
    assert (await expert.post(sign_path(cid)))[0] == 200  # v1 without the password
    # The expert is promoted; a correction signed afterwards carries the new title.
    db = Database(settings.resolved_database_url)
    try:
        async with db.write() as session:
            await session.execute(update(User).where(User.id == expert.user["id"])
                                  .values(title="Chief Physician, Head of Cardiology"))
    finally:
        await db.close()
    status, body = await expert.post(f"/api/consultations/{cid}/report",
                                     REPORT | {"impression": "Stable angina, CCS class II"})
    assert status == 200 and body["current"]["version"] == 2
    draft = body["current"]
    assert not draft["signed"] and draft["corrects_version"] == 1
    assert all(draft[f] in (None, False) for f in SIGNER_FIELDS)
    status, body = await expert.post(sign_path(cid), {"password": DEMO_PASSWORD})
    assert status == 200, body
    v1, v2 = body["versions"]
    assert (v1["version"], v1["signer_title"], v1["signed_with_password"]) == (
        1, "Chief Physician", False)
    assert (v2["version"], v2["signer_title"], v2["signed_with_password"]) == (
        2, "Chief Physician, Head of Cardiology", True)
    assert v2["corrects_version"] == 1 and v1["impression"] == "Stable angina"
    assert v2["signed_at"] > v1["signed_at"]
    status, got = await village.get(f"/api/consultations/{cid}/report")
    assert status == 200 and got["versions"] == [v1, v2] and got["current"] == v2


async def test_openapi_describes_the_optional_body(api: Api) -> None:
    status, doc = await api.get("/api/openapi.json")
    assert status == 200
    op = doc["paths"]["/api/consultations/{id}/report/sign"]["post"]
    assert op["requestBody"]["required"] is False
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    schema = doc["components"]["schemas"][ref]
    assert schema["properties"]["password"]["type"] == "string"
    assert schema.get("additionalProperties") is False and "required" not in schema
    report_version = doc["components"]["schemas"]["ReportVersionOut"]["properties"]
    assert set(SIGNER_FIELDS) | {"corrects_version", "signed_at", "version"} <= set(
        report_version)
