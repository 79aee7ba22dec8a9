"""signaling/eio.py: engine.io's websocket loop with one watchdog per socket.

A real python-socketio server on loopback with short ping settings; raw websocket clients
speak engine.io v4 by hand so the test controls exactly what the server receives.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import re
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import engineio.async_socket
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer

from yilian.signaling import eio, wirejson

PING_INTERVAL, PING_TIMEOUT = 0.4, 0.4
ROOT = Path(__file__).resolve().parents[2]


def test_the_pin_the_installed_release_and_the_patch_agree() -> None:
    """The lean loop replaces four methods of one python-engineio release: pyproject.toml
    pins that release, it is the one installed, and the library's methods are still the ones
    the replacements were written from. Upgrading engine.io means re-reading eio.py."""
    pins = re.findall(r'"python-engineio==([^";]+)"',
                      (ROOT / "pyproject.toml").read_text())
    assert pins == [eio.PATCHED_RELEASE]
    assert version("python-engineio") == eio.PATCHED_RELEASE
    original = engineio.async_socket.AsyncSocket
    if getattr(original, "_yilian_lean_loop", False):  # already patched in this process
        return
    for name, digest in eio.LIBRARY_SOURCES.items():
        source = inspect.getsource(getattr(original, name))
        assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, name


async def _server() -> tuple[TestServer, socketio.AsyncServer, list[str]]:
    assert eio.install()
    sio = socketio.AsyncServer(async_mode="aiohttp", ping_interval=PING_INTERVAL,
                               ping_timeout=PING_TIMEOUT, json=wirejson)
    disconnects: list[str] = []

    @sio.on("echo")
    async def echo(sid: str, data: object) -> object:
        return data

    @sio.on("burst")
    async def burst(sid: str, data: dict[str, Any]) -> int:
        # Small packets are written directly, large ones queued: the order must hold. Sent
        # straight to engine.io (as the relay does), so nothing yields between packets.
        eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
        for n, size in enumerate(data["sizes"]):
            event = ["n", {"b": data["b"], "n": n, "pad": "x" * size}]
            await sio.eio.send(eio_sid, "2" + wirejson.dumps(event))
        return len(data["sizes"])

    @sio.event
    async def disconnect(sid: str, reason: object = None) -> None:
        disconnects.append(sid)

    app = web.Application()
    sio.attach(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, sio, disconnects


async def _open(http: aiohttp.ClientSession, server: TestServer) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(server.make_url("/socket.io/?EIO=4&transport=websocket"))
    opening = await ws.receive_str()
    assert opening.startswith("0{"), opening
    await ws.send_str("40")
    assert (await ws.receive_str()).startswith("40")
    return ws


async def test_a_silent_client_is_closed_and_a_live_one_kept() -> None:
    server, sio, disconnects = await _server()
    limit = PING_INTERVAL + PING_TIMEOUT
    try:
        async with aiohttp.ClientSession() as http:
            silent = await _open(http, server)
            live = await _open(http, server)

            async def answer_pings() -> None:
                async for msg in live:
                    if msg.type == aiohttp.WSMsgType.TEXT and msg.data == "2":
                        await live.send_str("3")

            pinger = asyncio.create_task(answer_pings())
            started = time.monotonic()
            while not silent.closed:  # the silent client reads but never answers a ping
                msg = await asyncio.wait_for(silent.receive(), 5 * limit)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.CLOSING):
                    break
            assert time.monotonic() - started < 4 * limit
            await asyncio.sleep(2 * limit)
            assert not live.closed and len(disconnects) == 1

            # The live socket still carries events both ways, acks included.
            await live.send_str('421["echo",{"n":1,"text":"你好"}]')
            await asyncio.sleep(0.2)
            pinger.cancel()
            await asyncio.gather(pinger, return_exceptions=True)
            await live.close()
        for _ in range(50):
            if len(disconnects) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(disconnects) == 2
    finally:
        await sio.shutdown()
        await server.close()


async def test_events_and_acks_round_trip_through_the_lean_loop() -> None:
    server, sio, _ = await _server()
    try:
        async with aiohttp.ClientSession() as http:
            ws = await _open(http, server)
            await ws.send_str('427["echo",{"n":7,"text":"你好","big":12345678901234567890123}]')
            await ws.send_str('428["echo",[1,2.5,null,true]]')
            replies = []
            while len(replies) < 2:
                text = await asyncio.wait_for(ws.receive_str(), 5)
                if text.startswith("43"):
                    replies.append(text)
            # Integers beyond 64 bits are read as floats (as a browser's JSON.parse would).
            assert replies == ['437[{"n":7,"text":"你好","big":1.2345678901234568e+22}]',
                               "438[[1,2.5,null,true]]"]
            await ws.send_str('429["echo","again"]')
            while True:
                text = await asyncio.wait_for(ws.receive_str(), 5)
                if text.startswith("43"):
                    break
            assert text == '439["again"]'
            await ws.close()
    finally:
        await sio.shutdown()
        await server.close()


async def test_direct_and_queued_writes_keep_their_order() -> None:
    server, sio, _ = await _server()
    sizes = [10, eio.DIRECT_MAX_CHARS + 100, 10, 10, 50_000, 20, 10] * 30
    try:
        async with aiohttp.ClientSession() as http:
            ws = await _open(http, server)
            for b in range(3):  # three bursts at once (handlers run concurrently), read after
                await ws.send_str(f"421{wirejson.dumps(['burst', {'b': b, 'sizes': sizes}])}")
            seen: dict[int, list[int]] = {0: [], 1: [], 2: []}
            acks = 0
            while acks < 3:
                text = await asyncio.wait_for(ws.receive_str(), 5)
                if text.startswith('42["n"'):
                    event = wirejson.loads(text[2:])[1]
                    seen[event["b"]].append(event["n"])
                elif text.startswith("431["):
                    acks += 1
            assert seen == {b: list(range(len(sizes))) for b in range(3)}
            await ws.close()
    finally:
        await sio.shutdown()
        await server.close()
