"""Raw socket.io frames on ``/rtc``: what a browser sends, acks, and malformed frames.

The server reads ``/rtc`` events on a short path (signaling/server.py); these frames, written
by hand with bench/rtc_wire.py's client, check that it answers as python-socketio would and
that a signal still reaches only the named peer of the same room.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bench.rtc_wire import WireClient
from tests.signaling.conftest import until
from yilian.signaling import wirejson

CANDIDATE = {"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host", "sdpMid": "0",
             "sdpMLineIndex": 0}


async def _client(http: aiohttp.ClientSession, server: TestServer, token: str,
                  events: list[tuple[str, Any]]) -> WireClient:
    async def on_event(event: str, data: Any) -> None:
        events.append((event, data))

    client = WireClient(on_event)
    await client.connect(http, str(server.make_url("/")), token)
    return client


async def _raw_ack(client: WireClient, frame_body: str, ack_id: int) -> Any:
    """Send ``42/rtc,<ack id><frame_body>`` as written and wait for its ack."""
    assert client.ws is not None
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    client._acks[ack_id] = future
    await client.ws.send_str(f"42/rtc,{ack_id}{frame_body}")
    return await asyncio.wait_for(future, 10)


async def test_signals_without_ack_reach_the_named_peer_only(
    server: TestServer, doctors: dict[str, Any], rooms: dict[str, str],
    caplog: pytest.LogCaptureFixture
) -> None:
    got: dict[str, list[tuple[str, Any]]] = {"expert": [], "village": [], "township": []}
    async with aiohttp.ClientSession() as http:
        clients = {name: await _client(http, server, doctors[name].token, got[name])
                   for name in got}
        try:
            expert, village, township = clients["expert"], clients["village"], clients["township"]
            e_ack = await expert.call("join", {"room": rooms["village"]})
            v_ack = await village.call("join", {"room": rooms["village"]})
            t_ack = await township.call("join", {"room": rooms["township"]})
            assert e_ack["ok"] and v_ack["ok"] and t_ack["ok"]

            # As the browser sends them: no ack id. In order, and only to the named peer.
            for i in range(50):
                await village.emit("signal", {"to": e_ack["peer_id"],
                                              "candidate": {**CANDIDATE, "sdpMLineIndex": i}})
            await until(lambda: len([e for e, _ in got["expert"] if e == "signal"]) == 50)
            signals = [d for e, d in got["expert"] if e == "signal"]
            assert [d["candidate"]["sdpMLineIndex"] for d in signals] == list(range(50))
            assert {d["from"] for d in signals} == {v_ack["peer_id"]}
            assert signals[0]["candidate"] == {**CANDIDATE, "usernameFragment": None}

            # A peer of another room is unknown, with or without an ack.
            await township.emit("signal", {"to": e_ack["peer_id"], "candidate": CANDIDATE})
            ack = await township.call("signal", {"to": e_ack["peer_id"], "candidate": CANDIDATE})
            assert ack["ok"] is False and ack["error"]["code"] == "unknown_peer"

            # Malformed frames: error acks where the frame has an ack id, and no crash.
            frame = wirejson.dumps(["signal", {"to": e_ack["peer_id"]}])
            ack = await _raw_ack(village, frame, 901)
            assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload"
            ack = await _raw_ack(village, "[7,{}]", 902)
            assert ack["ok"] is False and ack["error"]["code"] == "unknown_event"
            ack = await _raw_ack(village, '["signal",{"to":"x","candidate":null},2]', 903)
            assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload"
            assert village.ws is not None
            caplog.clear()
            for frame in ("42/rtc,[", "42/rtc,[]", "42/rtc,{}", '42/rtc,["signal",1]',
                          "42/rtc,99999999999999999999999[\"chat\"]", "4x", "42/rtc,[") * 20:
                await village.ws.send_str(frame)
            ack = await village.call("chat", {"room": rooms["village"], "text": "still here"})
            assert ack["ok"], ack
            # Garbage in a loop is one warning line a minute, without tracebacks.
            noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(noisy) == 1 and "malformed socket.io frame" in noisy[0].getMessage()
            assert noisy[0].exc_info is None
            await until(lambda: any(e == "chat" for e, _ in got["expert"]))
            await asyncio.sleep(0.1)
            assert len([e for e, _ in got["expert"] if e == "signal"]) == 50
            assert not [e for e, _ in got["township"] if e in ("signal", "chat")]
        finally:
            await asyncio.gather(*(c.close() for c in clients.values()))
