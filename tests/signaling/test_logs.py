"""What a client can make the server log: never a frame's content (it may be patient data),
never a traceback for its garbage, and at most one warning a minute per kind of garbage."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.signaling.raw import RawSocket
from yilian.signaling.logs import ThrottledLog, scrub_engineio

PHI = "Wang Fang 110101199003074518 HIV+"


def _records_ok(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Check what every record says; return the warnings and worse."""
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert PHI not in text and "Wang Fang" not in text, (record.name, text)
        assert record.exc_info is None and "Traceback" not in text, (record.name, text)
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def _per_logger(warnings: list[logging.LogRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in warnings:
        counts[record.name] = counts.get(record.name, 0) + 1
    return counts


async def test_malformed_frames_are_logged_by_event_size_and_sid_only(
    server: TestServer, doctors: dict[str, Any], rooms: dict[str, str],
    caplog: pytest.LogCaptureFixture
) -> None:
    room = rooms["village"]
    chat = json.dumps(["chat", {"room": room, "text": PHI}])
    async with aiohttp.ClientSession() as http:
        sock = RawSocket()
        try:
            await sock.connect(http, str(server.make_url("/")), doctors["village"].token)
            assert (await sock.call("join", {"room": room}))["ok"]
            caplog.set_level(logging.INFO)
            caplog.clear()
            frames: list[str | bytes] = [
                "42/rtc," + chat[:-1],  # cut short: invalid JSON
                "42/rtc,5" + chat[:-1],
                "42/rtc," + chat + "]",
                "42/rtc,[" + json.dumps(PHI) + ",1]",  # an event named with patient data
                "4" + PHI,
                PHI,
                "b" + PHI,  # not base64
                PHI.encode(),  # a binary frame
                "42/rtc," + json.dumps({"chat": PHI}),  # an object, not a list
            ]
            for frame in frames * 30:
                await sock.send(frame)
            ack = await sock.call("chat", {"room": room, "text": "still here"})
            assert ack["ok"], ack
            warnings = _records_ok(caplog)
            assert _per_logger(warnings) == {"yilian.signaling.server": 1,
                                             "yilian.signaling.engineio": 1}, warnings
            first = next(r for r in warnings if r.name == "yilian.signaling.server")
            message = first.getMessage()
            assert message.startswith("dropped a malformed socket.io frame from "), message
            # The socket.io packet: the frame without engine.io's type digit.
            assert f'event "chat", {len(frames[0]) - 1} characters' in message, message
        finally:
            await sock.close()


async def test_engineio_garbage_and_bad_handshakes_get_4xx_and_one_quiet_line(
    server: TestServer, doctors: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    base = str(server.make_url("/socket.io/"))
    ws_base = base.replace("http", "ws", 1)
    caplog.set_level(logging.INFO)
    caplog.clear()
    statuses: list[tuple[str, int]] = []
    async with aiohttp.ClientSession() as http:

        async def request(method: str, query: str, body: str | None = None,
                          headers: dict[str, str] | None = None) -> tuple[int, str]:
            async with http.request(method, base + query, data=body, headers=headers) as resp:
                statuses.append((f"{method} {query} {(body or '')[:20]!r}", resp.status))
                return resp.status, await resp.text()

        for _ in range(3):
            # A session id is quoted by python-engineio's message: first, so it is logged.
            await request("GET", "?EIO=4&transport=polling&sid=" + PHI.replace(" ", "+"))
            await request("GET", "?EIO=4&transport=polling",
                          headers={"Origin": "http://" + PHI.replace(" ", "-")})
            await request("GET", "?EIO=3&transport=polling")
            await request("GET", "?EIO=\u0664&transport=polling")
            await request("GET", "?EIO=4&transport=websocket")  # no upgrade
            await request("GET", "?EIO=4&transport=websocket",
                          headers={"Upgrade": "websocket", "Connection": "Upgrade"})  # no key
            await request("GET", "?EIO=4&transport=carrier-pigeon")
            await request("POST", "?EIO=4&transport=polling&sid=nope", "40")
            await request("GET", "?EIO=4&transport=polling&j=abc")
            await request("PUT", "?EIO=4&transport=polling")
            # Long-polling sessions sent payloads that are not engine.io: each refused
            # with 400, and the session is closed.
            for payload in ("b!!!" + PHI, "9", "\u06642/rtc,[\"chat\"]", "4" + PHI + "\x1e7x",
                            "d=" + PHI):
                status, opening = await request("GET", "?EIO=4&transport=polling")
                assert status == 200 and opening.startswith("0{"), opening
                sid = json.loads(opening[1:])["sid"]
                status, _ = await request("POST", f"?EIO=4&transport=polling&sid={sid}", payload)
                assert status == 400, payload
                status, _ = await request("GET", f"?EIO=4&transport=polling&sid={sid}")
                assert status == 400
            # A websocket upgrade of a polling session that sends garbage instead of "2probe".
            status, opening = await request("GET", "?EIO=4&transport=polling")
            sid = json.loads(opening[1:])["sid"]
            ws = await http.ws_connect(f"{ws_base}?EIO=4&transport=websocket&sid={sid}")
            await ws.send_str("\u0664" + PHI)
            await ws.close()
            # Garbage on a websocket: dropped, and the socket goes on.
            sock = RawSocket()
            await sock.connect(http, str(server.make_url("/")), doctors["village"].token)
            for frame in ("9", "7" + PHI, "", "\u0664" + PHI, "b" + PHI, "5",
                          "6" + PHI, "0"):
                await sock.send(frame)
            ack = await sock.call("leave", {"room": "consultation:1"})
            assert ack["ok"] is False and ack["error"]["code"] == "not_in_room"
            await sock.close()

        assert all(status < 500 for _, status in statuses), statuses
        assert {s for _, s in statuses} <= {200, 400, 405}, statuses
        started = time.monotonic()
        async with http.get(str(server.make_url("/healthz"))) as resp:
            assert resp.status == 200
        assert time.monotonic() - started < 1.0
    warnings = _records_ok(caplog)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], warnings
    counts = _per_logger(warnings)
    assert counts.get("yilian.signaling.engineio") == 1, warnings
    assert warnings[0].getMessage().startswith("Invalid session <"), warnings
    assert all(n == 1 for n in counts.values()), warnings


def test_a_throttled_log_says_one_line_a_window_with_the_count_it_dropped(
    caplog: pytest.LogCaptureFixture
) -> None:
    log = ThrottledLog(logging.getLogger("yilian.test.throttle"), window=0.3)
    caplog.set_level(logging.DEBUG, logger="yilian.test.throttle")
    for i in range(5):
        log.info("packet %d data %s", i, PHI)  # below WARNING: library chatter, never logged
        try:
            raise ValueError(PHI)
        except ValueError:
            log.exception("handler error %d", i)
    time.sleep(0.35)
    log.warning("bad session")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and messages[0] == "handler error 0 (ValueError)", messages
    assert messages[1].startswith("bad session [4 more not logged in the last "), messages
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in caplog.records)
    _records_ok(caplog)



def test_what_engineio_quotes_of_a_client_is_not_logged() -> None:
    assert scrub_engineio(f"Invalid session {PHI}") == "Invalid session <33 characters>"
    assert scrub_engineio(f"Socket for session {PHI} is not connected") == \
        "Socket for session <33 characters> is not connected"
    assert scrub_engineio(f"http://{PHI} is not an accepted origin.") == \
        "<40 characters> is not an accepted origin."
    assert scrub_engineio("Invalid transport") == "Invalid transport"
