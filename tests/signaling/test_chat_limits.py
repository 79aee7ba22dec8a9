"""Chat as an attacker sends it: too long, too fast, and into a consultation that was called off.
Raw frames, so the flood is not slowed by a client library."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.signaling.conftest import until
from tests.signaling.raw import RawSocket
from yilian.server.core.settings import Settings

# Long enough that the periodic re-check never runs during a test here: what these tests see
# is what each chat line does.
RECHECK = 60.0
FLOOD_SECONDS = 2.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(rtc_recheck_seconds=RECHECK)


async def _socket(http: aiohttp.ClientSession, server: TestServer, token: str,
                  opened: list[RawSocket]) -> RawSocket:
    sock = RawSocket()
    opened.append(sock)
    reply = await sock.connect(http, str(server.make_url("/")), token)
    assert reply.startswith("40/rtc,{"), reply
    return sock


async def _pair(http: aiohttp.ClientSession, server: TestServer, doctors: dict[str, Any],
                room: str, opened: list[RawSocket]) -> tuple[RawSocket, RawSocket]:
    expert = await _socket(http, server, doctors["expert"].token, opened)
    village = await _socket(http, server, doctors["village"].token, opened)
    assert (await expert.call("join", {"room": room}))["ok"]
    assert (await village.call("join", {"room": room}))["ok"]
    return expert, village


async def test_a_chat_line_over_the_limit_is_refused(
    server: TestServer, doctors: dict[str, Any], rooms: dict[str, str]
) -> None:
    room = rooms["village"]
    opened: list[RawSocket] = []
    async with aiohttp.ClientSession() as http:
        try:
            expert, village = await _pair(http, server, doctors, room, opened)
            assert (await village.call("chat", {"room": room, "text": "x" * 2000}))["ok"]
            for text in ("x" * 2001, "\u75c5" * 2001, "x" * 100_000):
                ack = await village.call("chat", {"room": room, "text": text})
                assert ack == {"ok": False, "error": {
                    "code": "invalid_payload", "message": '"text" is longer than 2000 characters'}}
            await until(lambda: len(expert.got("chat")) == 1)
            await asyncio.sleep(0.2)
            assert [len(c["text"]) for c in expert.got("chat")] == [2000]
        finally:
            await asyncio.gather(*(s.close() for s in opened))


async def test_a_chat_flood_is_rate_limited_per_user_and_the_server_stays_responsive(
    server: TestServer, doctors: dict[str, Any], rooms: dict[str, str]
) -> None:
    room = rooms["village"]
    consultation = int(room.split(":")[1])
    opened: list[RawSocket] = []
    async with aiohttp.ClientSession() as http:
        try:
            expert = await _socket(http, server, doctors["expert"].token, opened)
            assert (await expert.call("join", {"room": room}))["ok"]
            phone = await _socket(http, server, doctors["village"].token, opened)
            assert (await phone.call("join", {"room": room}))["ok"]
            # The village doctor's token floods from another process for FLOOD_SECONDS.
            flooder = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).with_name("flood.py")),
                str(server.make_url("/")), doctors["village"].token, room, str(FLOOD_SECONDS),
                stdout=asyncio.subprocess.PIPE)
            assert flooder.stdout is not None
            assert await asyncio.wait_for(flooder.stdout.readline(), 30) == b"ready\n"
            probes: list[float] = []
            healthz = str(server.make_url("/healthz"))
            phone_acks = []
            while flooder.returncode is None and len(probes) < 30:
                started = time.monotonic()
                async with http.get(healthz) as resp:
                    assert resp.status == 200
                probes.append(time.monotonic() - started)
                if 5 <= len(probes) <= 7:  # mid-flood, from the same user's other device
                    phone_acks.append(await phone.call("chat", {"room": room, "text": "phone"}))
                await asyncio.sleep(0.05)
            report = json.loads(await asyncio.wait_for(flooder.stdout.readline(), 120))
            assert await flooder.wait() == 0
            codes = report["codes"]
            assert set(codes) == {"ok", "rate_limited"}, report
            # The phone may catch a token refilled before the flooder took it (a loaded machine
            # slows the flooder), but not three lines in a row: the bucket is the user's.
            phone_ok = sum(1 for a in phone_acks if a["ok"])
            assert len(phone_acks) == 3 and phone_ok < 3, phone_acks
            # The burst of 10, then one a second while the flood lasted, for both devices.
            assert 10 <= codes["ok"] + phone_ok <= 10 + int(report["seconds"]) + 1, report
            assert report["sent"] > 1000, report
            assert statistics.median(probes) < 0.2, probes

            # Only what was accepted went out and was kept.
            # (30 s: on a loaded machine the socket still drains the flood's refusals first)
            accepted = codes["ok"] + phone_ok
            await until(lambda: len(expert.got("chat")) >= accepted, 30)
            assert len(expert.got("chat")) == accepted
            status, body = await doctors["expert"].get(f"/api/consultations/{consultation}")
            assert status == 200 and len(body["chat"]) == accepted

            # The limit is the user's, not the socket's; it refills at one line a second.
            refused = [a["error"] for a in phone_acks if not a["ok"]]
            assert {e["code"] for e in refused} == {"rate_limited"}, phone_acks
            assert refused[0]["message"].startswith("too many chat messages; the next")
            await asyncio.sleep(1.1)
            assert (await phone.call("chat", {"room": room, "text": "from my phone"}))["ok"]
            # Another user has a bucket of their own.
            assert (await expert.call("chat", {"room": room, "text": "slow down"}))["ok"]
        finally:
            await asyncio.gather(*(s.close() for s in opened))


async def test_chat_in_a_cancelled_consultation_is_refused_and_closes_the_room(
    server: TestServer, doctors: dict[str, Any], rooms: dict[str, str]
) -> None:
    room = rooms["village"]
    consultation = int(room.split(":")[1])
    opened: list[RawSocket] = []
    async with aiohttp.ClientSession() as http:
        try:
            expert, village = await _pair(http, server, doctors, room, opened)
            assert (await village.call("chat", {"room": room, "text": "BP 150/95"}))["ok"]
            status, body = await doctors["village"].post(
                f"/api/consultations/{consultation}/cancel", {"reason": "transferred"})
            assert status == 200 and body["status"] == "cancelled", body

            # The next line, long before any periodic re-check, is refused ...
            ack = await expert.call("chat", {"room": room, "text": "noted"})
            assert ack["ok"] is False and ack["error"]["code"] == "room_closed", ack
            # ... and closes the room for everyone at once.
            for sock in (expert, village):
                await until(lambda s=sock: bool(s.got("room-closed")), 2.0)
                assert [c["room"] for c in sock.got("room-closed")] == [room]
            ack = await village.call("chat", {"room": room, "text": "hello?"})
            assert ack["error"]["code"] == "not_in_room"
            assert (await village.call("join", {"room": room}))["error"]["code"] == "room_closed"
            status, body = await doctors["expert"].get(f"/api/consultations/{consultation}")
            assert [m["text"] for m in body["chat"]] == ["BP 150/95"]
        finally:
            await asyncio.gather(*(s.close() for s in opened))
