"""Lockout after repeated wrong passwords, one's own sessions, their last use, and
deactivation cutting a live /rtc socket within a second."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import aiohttp
from sqlalchemy import select, update

from tests.signaling.conftest import find_consultation, until
from tests.signaling.raw import RawSocket
from tests.support.rtc_client import RtcClient
from yilian.server.core import keys
from yilian.server.core.db import utcnow
from yilian.server.core.models import AuditEntry, AuthToken, User

BROWSER = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Safari/537.36")


async def _login(api: Any, username: str, password: str) -> tuple[int, Any]:
    return await api.post("/api/auth/login", {"username": username, "password": password})


async def test_five_wrong_passwords_lock_the_account_whatever_the_password(api: Any) -> None:
    for i in range(4):
        status, err = await _login(api, "township", f"wrong-{i}")
        assert status == 401 and err["error"]["code"] == "invalid_credentials"
    status, err = await _login(api, "township", "wrong-4")  # the fifth locks it
    assert status == 401
    for password in ("yilian-demo", "wrong-5"):  # same answer, right password or not
        status, err = await _login(api, "township", password)
        assert status == 429 and err["error"]["code"] == "account_locked", err
        assert 890 <= err["error"]["details"]["retry_after_seconds"] <= 901
    # Other accounts are not affected.
    assert (await _login(api, "village", "yilian-demo"))[0] == 200

    await api.flush_audit()
    async with api.server.app[keys.DATABASE].read() as session:
        actions = [a for (a,) in await session.execute(
            select(AuditEntry.action).where(AuditEntry.resource_type == "user",
                                            AuditEntry.action.in_(("login_failed",
                                                                   "account_locked")))
            .order_by(AuditEntry.id))]
    assert actions == ["login_failed"] * 5 + ["account_locked"]

    admin = await api.login("admin")
    status, users = await admin.get("/api/users", params={"q": "township"})
    township = next(u for u in users if u["username"] == "township")
    assert township["locked_until"] is not None
    status, body = await admin.request("PATCH", f"/api/users/{township['id']}", {"unlock": True})
    assert status == 200 and body["locked_until"] is None
    assert (await _login(api, "township", "yilian-demo"))[0] == 200


async def test_side_by_side_attempts_take_no_more_guesses_than_the_lockout(api: Any) -> None:
    # Twenty wrong passwords at once: each attempt is counted before its password is checked,
    # so only five are ever checked; the rest are refused unseen, and the account is locked.
    answers = await asyncio.gather(*(_login(api, "township", f"wrong-{i}") for i in range(20)))
    codes = sorted(err["error"]["code"] for _, err in answers)
    assert codes.count("invalid_credentials") == 5, codes
    assert {s for s, err in answers if err["error"]["code"] != "invalid_credentials"} == {429}
    api.server.app[keys.LOGIN_LIMITER]._failures.clear()  # a minute later: the lock remains
    status, err = await _login(api, "township", "yilian-demo")
    assert status == 429 and err["error"]["code"] == "account_locked"
    await api.flush_audit()
    async with api.server.app[keys.DATABASE].read() as session:
        actions = [a for (a,) in await session.execute(
            select(AuditEntry.action).where(AuditEntry.action.in_(("login_failed",
                                                                   "account_locked"))))]
    assert sorted(actions) == ["account_locked"] + ["login_failed"] * 5

    # The right password beside four wrong ones: attempts still being checked count as wrong,
    # so the account may lock early (if the right one is checked last), never late.
    answers = await asyncio.gather(*(_login(api, "county", p) for p in
                                     ("w-1", "w-2", "yilian-demo", "w-3", "w-4")))
    statuses = sorted(s for s, _ in answers)
    assert statuses in ([200, 401, 401, 401, 401], [401, 401, 401, 401, 429]), statuses
    # A right password checked on its own starts the count again.
    api.server.app[keys.LOGIN_LIMITER]._failures.clear()
    async with api.server.app[keys.DATABASE].write() as session:
        await session.execute(update(User).where(User.username == "county")
                              .values(locked_until=None))
    for i in range(4):
        assert (await _login(api, "county", f"again-{i}"))[0] == 401
    assert (await _login(api, "county", "yilian-demo"))[0] == 200
    assert (await _login(api, "county", "again-5"))[0] == 401
    assert (await _login(api, "county", "yilian-demo"))[0] == 200


async def test_the_address_limit_counts_attempts_before_their_passwords(api: Any) -> None:
    limiter = api.server.app[keys.LOGIN_LIMITER]
    per_account = limiter.per_account
    answers = await asyncio.gather(*(_login(api, f"nobody-{i % 2}", "x")
                                     for i in range(2 * per_account + 6)))
    assert sorted(s for s, _ in answers).count(401) == 2 * per_account
    # Right passwords give their attempt back: a hospital's staff behind one address are not
    # stopped by their own logins.
    limiter._failures.clear()
    limiter.per_address = 3
    for _ in range(5):
        assert (await _login(api, "village", "yilian-demo"))[0] == 200


async def test_failures_further_apart_than_the_window_start_the_count_again(api: Any) -> None:
    for i in range(4):
        assert (await _login(api, "county", f"wrong-{i}"))[0] == 401
    async with api.server.app[keys.DATABASE].write() as session:
        await session.execute(update(User).where(User.username == "county").values(
            last_failed_login_at=utcnow() - timedelta(minutes=16)))
    assert (await _login(api, "county", "wrong-4"))[0] == 401  # counts as the first
    assert (await _login(api, "county", "yilian-demo"))[0] == 200  # and a success resets
    for i in range(4):
        assert (await _login(api, "county", f"again-{i}"))[0] == 401
    assert (await _login(api, "county", "yilian-demo"))[0] == 200


async def test_wrong_old_passwords_count_towards_the_lockout(api: Any) -> None:
    expert = await api.login("expert")
    for i in range(5):
        status, err = await expert.post("/api/auth/password", {"old_password": f"guess-{i}",
                                                               "new_password": "x" * 12})
        assert status == 422 and err["error"]["code"] == "wrong_password"
    status, err = await _login(api, "expert", "yilian-demo")
    assert status == 429 and err["error"]["code"] == "account_locked"
    # the token takes no more guesses either, the right one included, while it is locked
    status, err = await expert.post("/api/auth/password", {"old_password": "yilian-demo",
                                                           "new_password": "x" * 12})
    assert status == 429 and err["error"]["code"] == "account_locked"


async def test_my_sessions_and_ending_them(api: Any) -> None:
    status, body = await api.post("/api/auth/login", {"username": "village",
                                                      "password": "yilian-demo"},
                                  headers={"User-Agent": BROWSER})
    assert status == 200
    phone = type(api)(api.server, api.http, body["token"], body["user"])
    laptop, tablet = await api.login("village"), await api.login("village")
    status, sessions = await laptop.get("/api/auth/sessions")
    assert status == 200 and len(sessions) == 3
    assert [s["current"] for s in sessions].count(True) == 1
    mine = next(s for s in sessions if s["current"])
    assert mine["client_address"] == "127.0.0.1" and mine["last_seen_at"]
    from_phone = next(s for s in sessions if s["user_agent"] == BROWSER)
    assert from_phone["browser"] == "Chrome 131 · Windows"

    # Someone else's session is not mine to end.
    expert = await api.login("expert")
    status, theirs = await expert.get("/api/auth/sessions")
    status, err = await laptop.request("DELETE", f"/api/auth/sessions/{theirs[0]['id']}")
    assert status == 404
    assert (await expert.get("/api/me"))[0] == 200

    status, _ = await laptop.request("DELETE", f"/api/auth/sessions/{from_phone['id']}")
    assert status == 204
    assert (await phone.get("/api/me"))[0] == 401
    status, err = await laptop.request("DELETE", f"/api/auth/sessions/{from_phone['id']}")
    assert status == 404  # already ended
    status, body = await laptop.request("DELETE", "/api/auth/sessions")
    assert status == 200 and body == {"ended": 1}
    assert (await tablet.get("/api/me"))[0] == 401
    assert (await laptop.get("/api/me"))[0] == 200
    status, sessions = await laptop.get("/api/auth/sessions")
    assert [s["current"] for s in sessions] == [True]


async def test_last_use_is_written_at_most_once_a_minute_per_token(api: Any) -> None:
    hub = api.server.app[keys.SESSIONS]
    db = api.server.app[keys.DATABASE]
    village = await api.login("village")
    await hub.flush(db)
    for _ in range(5):
        assert (await village.get("/api/me"))[0] == 200
    assert await hub.flush(db) == 1  # five requests, one pending write
    for _ in range(5):
        assert (await village.get("/api/me"))[0] == 200
    assert await hub.flush(db) == 0  # within the minute: nothing
    async with db.read() as session:
        seen = (await session.execute(select(AuthToken.last_seen_at).where(
            AuthToken.user_id == village.user["id"]))).scalars().all()
    assert all(s is not None for s in seen)


async def test_deactivation_cuts_the_users_rtc_socket_and_next_call_within_a_second(
        api: Any) -> None:
    admin, village, expert = await asyncio.gather(*(api.login(n) for n in
                                                    ("admin", "village", "expert")))
    room = f"consultation:{await find_consultation(expert, 'accepted', village)}"
    client = RtcClient(str(api.server.make_url("/")), village.token, label="village",
                       auto_negotiate=False)
    ended: list[Any] = []

    async def on_ended(data: Any) -> None:
        ended.append(data)

    client.sio.on("session-ended", on_ended, namespace="/rtc")
    try:
        await client.connect()
        assert (await client.join(room))["ok"]
        started = time.monotonic()
        status, _ = await admin.request("PATCH", f"/api/users/{village.user['id']}",
                                        {"active": False})
        assert status == 200
        status, err = await village.get("/api/consultations")
        assert status == 401 and err["error"]["code"] == "invalid_token"
        await until(lambda: not client.sio.connected, 1.0)
        assert time.monotonic() - started < 1.0
        assert ended and ended[0]["error"]["code"] == "unauthorized"
        await asyncio.sleep(0.3)  # the library reconnects after drops, not after this
        assert not client.sio.connected
    finally:
        await client.close()


async def test_a_must_change_account_gets_no_socket(api: Any) -> None:
    admin = await api.login("admin")
    village = await api.login("village")
    status, reset = await admin.request("PATCH", f"/api/users/{village.user['id']}",
                                        {"reset_password": True})
    status, body = await api.post("/api/auth/login", {"username": "village",
                                                      "password": reset["temporary_password"]})
    assert status == 200 and body["must_change_password"]
    sock = RawSocket()
    async with aiohttp.ClientSession() as http:
        try:
            reply = await sock.connect(http, str(api.server.make_url("/")), body["token"])
            assert reply == '44/rtc,{"message":"unauthorized"}', reply
        finally:
            await sock.close()
