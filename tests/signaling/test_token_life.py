"""A socket lives as long as its token: logout, expiry and a deactivated account end it, and a
room closes when its consultation does. Raw frames, so every ack and event is seen as sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select, update

from tests.signaling.conftest import until
from tests.signaling.raw import RawSocket
from tests.signaling.test_redis_processes import ServerProcess, redis_channel  # noqa: F401
from tests.support.rtc_client import RtcClient
from yilian.server.core import keys
from yilian.server.core.auth import issue_token
from yilian.server.core.models import User
from yilian.server.core.settings import Settings
from yilian.signaling.keys import RTC
from yilian.signaling.namespace import UNAUTHORIZED

RECHECK = 0.5
REFUSED = {"ok": False, "error": {"code": "unauthorized", "message": UNAUTHORIZED}}
ENDED = {"error": {"code": "unauthorized", "message": UNAUTHORIZED}}
CANDIDATE = {"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host", "sdpMid": "0",
             "sdpMLineIndex": 0}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Re-check tokens and rooms twice a second."""
    return settings.with_overrides(rtc_recheck_seconds=RECHECK)


def _url(server: TestServer) -> str:
    return str(server.make_url("/"))


async def _socket(http: aiohttp.ClientSession, server: TestServer, token: str,
                  opened: list[RawSocket]) -> RawSocket:
    sock = RawSocket()
    opened.append(sock)
    reply = await sock.connect(http, _url(server), token)
    assert reply.startswith("40/rtc,{"), reply
    return sock


async def _user(server: TestServer, username: str) -> User:
    async with server.app[keys.DATABASE].read() as session:
        return (await session.execute(select(User).where(User.username == username))).scalar_one()


async def test_logout_ends_the_socket_at_once(
    server: TestServer, api: Any, doctors: dict[str, Any], rooms: dict[str, str]
) -> None:
    village = await api.login("village")  # its own token: logging it out leaves the others
    room = rooms["village"]
    opened: list[RawSocket] = []
    async with aiohttp.ClientSession() as http:
        try:
            expert = await _socket(http, server, doctors["expert"].token, opened)
            mine = await _socket(http, server, village.token, opened)
            assert (await expert.call("join", {"room": room}))["ok"]
            joined = await mine.call("join", {"room": room})
            assert joined["ok"], joined

            started = time.monotonic()
            assert (await village.post("/api/auth/logout"))[0] == 204
            # A join sent right after the logout response is refused (the session ended
            # inside the logout, before its response), then the socket is disconnected.
            assert await mine.call("join", {"room": rooms["township"]}) == REFUSED
            await asyncio.wait_for(mine.ended.wait(), 1.0)
            assert time.monotonic() - started < 1.0

            # Told why, then disconnected from /rtc (no grace period: the others see it go).
            assert mine.got("session-ended") == [ENDED]
            ended_at = mine.frames.index(next(f for f in mine.frames if f.startswith("41/rtc")))
            assert '42/rtc,["session-ended"' in mine.frames[ended_at - 1]
            await until(lambda: expert.got("peer-left") == [{"peer_id": joined["peer_id"]}], 2)

            # Every event on the still-open websocket is refused, and the token cannot
            # connect again.
            for event, data in [
                ("join", {"room": room}),
                ("chat", {"room": room, "text": "still here?"}),
                ("signal", {"to": "anyone", "candidate": CANDIDATE}),
                ("leave", {"room": room}),
            ]:
                assert await mine.call(event, data) == REFUSED, event
            assert await mine.connect_rtc(village.token) == '44/rtc,{"message":"unauthorized"}'
            assert (await expert.call("chat", {"room": room, "text": "alone"}))["ok"]
        finally:
            await asyncio.gather(*(s.close() for s in opened))


async def test_a_socketio_client_is_disconnected_by_logout_and_does_not_come_back(
    server: TestServer, api: Any, rooms: dict[str, str]
) -> None:
    village = await api.login("village")
    client = RtcClient(_url(server), village.token or "", label="village", auto_negotiate=False)
    ended: list[Any] = []

    async def on_ended(data: Any) -> None:
        ended.append(data)

    client.sio.on("session-ended", on_ended, namespace="/rtc")
    try:
        await client.connect()
        assert (await client.join(rooms["village"]))["ok"]
        assert (await village.post("/api/auth/logout"))[0] == 204
        await until(lambda: not client.sio.connected, 1.0)
        assert ended == [ENDED]
        await asyncio.sleep(0.5)  # the library client reconnects after drops, not after this
        assert not client.sio.connected
    finally:
        await client.close()


async def test_an_expired_token_ends_its_sockets(
    server: TestServer, rooms: dict[str, str]
) -> None:
    token = await issue_token(server.app[keys.DATABASE], await _user(server, "village"), 2)
    expires = time.time() + 2
    room = rooms["village"]
    opened: list[RawSocket] = []
    async with aiohttp.ClientSession() as http:
        try:
            busy = await _socket(http, server, token, opened)
            idle = await _socket(http, server, token, opened)
            assert (await busy.call("join", {"room": room}))["ok"]
            await asyncio.sleep(max(0.0, expires - time.time() - 0.6))
            assert not busy.ended.is_set() and not idle.ended.is_set()
            assert (await busy.call("chat", {"room": room, "text": "before"}))["ok"]

            await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)
            # An event after the expiry is refused (and ends the socket) ...
            assert await busy.call("chat", {"room": room, "text": "after"}) == REFUSED
            await asyncio.wait_for(busy.ended.wait(), 1.0)
            # ... and a socket that sends nothing is ended by the next re-check.
            await asyncio.wait_for(idle.ended.wait(), RECHECK + 2.0)
            assert idle.got("session-ended") == [ENDED] and busy.got("session-ended") == [ENDED]
        finally:
            await asyncio.gather(*(s.close() for s in opened))


async def test_a_deactivated_account_is_disconnected_within_the_recheck_interval(
    server: TestServer, doctors: dict[str, Any], rooms: dict[str, str]
) -> None:
    opened: list[RawSocket] = []
    async with aiohttp.ClientSession() as http:
        try:
            township = await _socket(http, server, doctors["township"].token, opened)
            assert (await township.call("join", {"room": rooms["township"]}))["ok"]
            async with server.app[keys.DATABASE].write() as session:
                await session.execute(
                    update(User).where(User.username == "township").values(active=False))
            started = time.monotonic()
            # A join checks the token in its own transaction: refused before the re-check.
            assert await township.call("join", {"room": rooms["village"]}) == REFUSED
            await asyncio.wait_for(township.ended.wait(), 2 * RECHECK + 2.0)
            assert time.monotonic() - started < 2 * RECHECK + 2.0
            assert township.got("session-ended") == [ENDED]
        finally:
            await asyncio.gather(*(s.close() for s in opened))


async def test_a_room_closes_when_its_consultation_is_cancelled(
    server: TestServer, api: Any, doctors: dict[str, Any], rooms: dict[str, str]
) -> None:
    room = rooms["village"]
    consultation = int(room.split(":")[1])
    opened: list[RawSocket] = []
    async with aiohttp.ClientSession() as http:
        try:
            expert = await _socket(http, server, doctors["expert"].token, opened)
            village = await _socket(http, server, doctors["village"].token, opened)
            waiting = await _socket(http, server, doctors["village"].token, opened)
            host = await expert.call("join", {"room": room})
            joined = await village.call("join", {"room": room})
            assert (await expert.call("lobby", {"room": room, "enabled": True}))["ok"]
            held = await waiting.call("join", {"room": room})  # a second device, held
            assert host["ok"] and joined["ok"] and held["ok"] and held["waiting"], held

            status, body = await doctors["village"].post(
                f"/api/consultations/{consultation}/cancel", {"reason": "patient recovered"})
            assert status == 200 and body["status"] == "cancelled", body
            for sock in (expert, village, waiting):
                await until(lambda s=sock: bool(s.got("room-closed")), 2 * RECHECK + 2.0)
                assert _closed_once(sock, room)

            # Out of the room: nothing reaches anyone, and the room cannot be joined again.
            ack = await village.call("signal", {"to": host["peer_id"], "candidate": CANDIDATE})
            assert ack["error"]["code"] == "unknown_peer"
            ack = await village.call("chat", {"room": room, "text": "hello?"})
            assert ack["error"]["code"] == "not_in_room"
            assert (await expert.call("join", {"room": room}))["error"]["code"] == "room_closed"
            assert room not in server.app[RTC].store.room_names()  # type: ignore[attr-defined]
            assert not expert.ended.is_set()  # the sockets stay connected
        finally:
            await asyncio.gather(*(s.close() for s in opened))


def _closed_once(sock: RawSocket, room: str) -> bool:
    """The socket got exactly one ``room-closed`` for ``room``, saying why."""
    closed = sock.got("room-closed")
    return len(closed) == 1 and closed[0]["room"] == room and \
        closed[0]["error"]["code"] == "room_closed"


@pytest.fixture
async def two_processes(
    settings: Settings, redis_channel: str, tmp_path: Path, server: TestServer  # noqa: F811
) -> AsyncIterator[list[ServerProcess]]:
    """Two ``yilian serve`` processes on the test database and one Redis, re-checking twice a
    second (the in-process ``server`` logs users in)."""
    env = {"YILIAN_RTC_RECHECK_SECONDS": str(RECHECK)}
    procs = [ServerProcess(settings, redis_channel, tmp_path / f"proc{i}.log", env)
             for i in (1, 2)]
    try:
        await asyncio.gather(*(p.ready() for p in procs))
        yield procs
    finally:
        # off the loop, together: the in-process server keeps answering while they stop
        codes = await asyncio.gather(*(asyncio.to_thread(p.stop) for p in procs))
    for p, code in zip(procs, codes, strict=True):
        text = p.log.read_text(errors="replace")
        assert code == 0, text[-3000:]
        assert "Traceback" not in text, text[-3000:]


async def test_logout_through_one_process_ends_the_socket_on_another(
    two_processes: list[ServerProcess], api: Any, doctors: dict[str, Any], rooms: dict[str, str]
) -> None:
    one, two = two_processes
    village = await api.login("village")
    room = rooms["village"]
    opened: list[RawSocket] = []
    async with aiohttp.ClientSession() as http:
        try:
            expert, mine = RawSocket(), RawSocket()
            opened += [expert, mine]
            assert (await expert.connect(http, one.url, doctors["expert"].token)).startswith("40")
            assert (await mine.connect(http, two.url, village.token)).startswith("40")
            assert (await expert.call("join", {"room": room}))["ok"]
            joined = await mine.call("join", {"room": room})
            assert joined["ok"], joined

            headers = {"Authorization": f"Bearer {village.token}"}
            async with http.post(f"{one.url}/api/auth/logout", headers=headers) as resp:
                assert resp.status == 204
            started = time.monotonic()
            # Before process two's re-check: a join checks the token in the database.
            assert await mine.call("join", {"room": rooms["township"]}) == REFUSED
            await asyncio.wait_for(mine.ended.wait(), 2 * RECHECK + 3.0)
            assert time.monotonic() - started < 2 * RECHECK + 3.0
            assert mine.got("session-ended") == [ENDED]
            # Its peer is gone from the shared room at once (no grace period).
            await until(lambda: expert.got("peer-left") == [{"peer_id": joined["peer_id"]}], 5)
        finally:
            await asyncio.gather(*(s.close() for s in opened))
