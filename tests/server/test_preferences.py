"""The user's language: saved with PUT /api/me/preferences, returned by /api/me and at login,
strictly validated, audited, and listed in the OpenAPI document."""

from __future__ import annotations

import typing

from sqlalchemy import select

from tests.conftest import Api
from yilian.server.core.db import Database
from yilian.server.core.models import AuditEntry, User
from yilian.server.core.schemas import Locale
from yilian.web import LANGUAGES


async def _locale_in_db(settings, user_id: int) -> str | None:
    db = Database(settings.resolved_database_url)
    async with db.read() as session:
        value = (await session.execute(select(User.locale).where(User.id == user_id))).scalar_one()
    await db.close()
    return value


async def _audit(settings, action: str) -> list[AuditEntry]:
    db = Database(settings.resolved_database_url)
    async with db.read() as session:
        rows = list((await session.execute(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))).scalars())
    await db.close()
    return rows


def test_the_server_knows_the_languages_the_client_has() -> None:
    assert typing.get_args(Locale) == LANGUAGES


async def test_locale_is_null_until_chosen_then_saved_returned_and_audited(api: Api, settings) -> None:
    village = await api.login("village")
    assert village.user["locale"] is None
    status, me = await village.get("/api/me")
    assert status == 200 and me["locale"] is None

    status, body = await village.put("/api/me/preferences", {"locale": "en"})
    assert status == 200, body
    assert body["locale"] == "en" and body["id"] == village.user["id"]
    assert body["username"] == "village" and "password_hash" not in body
    status, me = await village.get("/api/me")  # at once, though the token cache holds the user
    assert status == 200 and me["locale"] == "en"
    assert await _locale_in_db(settings, village.user["id"]) == "en"

    again = await api.login("village")  # a new session starts in the saved language
    assert again.user["locale"] == "en"
    status, body = await again.put("/api/me/preferences", {"locale": "zh-CN"})
    assert status == 200 and body["locale"] == "zh-CN"
    status, me = await village.get("/api/me")  # the other session of the same user
    assert me["locale"] == "zh-CN"

    other = await api.login("township")  # one user's choice is theirs only
    assert other.user["locale"] is None

    await api.flush_audit()
    entries = await _audit(settings, "update_preferences")
    assert [(e.user_id, e.resource_type, e.resource_id, e.detail) for e in entries] == [
        (village.user["id"], "user", str(village.user["id"]), {"locale": [None, "en"]}),
        (village.user["id"], "user", str(village.user["id"]), {"locale": ["en", "zh-CN"]}),
    ]
    assert all(e.ip == "127.0.0.1" and e.institution_id == village.user["institution_id"]
               for e in entries)


async def test_bad_preferences_are_refused_and_change_nothing(api: Api, settings) -> None:
    village = await api.login("village")
    status, _ = await village.put("/api/me/preferences", {"locale": "en"})
    assert status == 200
    bad_bodies = [
        {"locale": "fr"}, {"locale": "zh"}, {"locale": "EN"}, {"locale": "zh_CN"},
        {"locale": ""}, {"locale": None}, {"locale": 1}, {"locale": ["en"]},
        {"locale": "en", "theme": "dark"}, {}, [], "en",
    ]
    for bad in bad_bodies:
        status, body = await village.put("/api/me/preferences", bad)
        assert status == 422, (bad, status, body)
        assert body["error"]["code"] == "validation_error"
        assert isinstance(body["error"]["details"]["errors"], list), body
    for raw in (b"{", b"", b'{"locale": "en", "locale": "zh-CN"}'):
        async with api.http.put(api.url("/api/me/preferences"), data=raw, headers=village.headers(
                {"Content-Type": "application/json"})) as resp:
            body = await resp.json()
            assert resp.status == 400 and body["error"]["code"] == "invalid_json", (raw, body)
    assert await _locale_in_db(settings, village.user["id"]) == "en"
    status, me = await village.get("/api/me")
    assert me["locale"] == "en"

    status, body = await api.put("/api/me/preferences", {"locale": "en"})  # no token
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, _ = await village.request("GET", "/api/me/preferences")
    assert status == 405
    await api.flush_audit()
    assert len(await _audit(settings, "update_preferences")) == 1


async def test_openapi_lists_the_preferences_route(api: Api) -> None:
    status, doc = await api.get("/api/openapi.json")
    assert status == 200
    op = doc["paths"]["/api/me/preferences"]["put"]
    assert op["tags"] == ["auth"]
    schema = str(op["requestBody"])
    assert "PreferencesIn" in schema
    user_out = doc["components"]["schemas"]["UserOut"]["properties"]
    assert "locale" in user_out
