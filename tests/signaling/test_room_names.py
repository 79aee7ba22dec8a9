"""One room per consultation: ids are written one way only, and digits are ASCII digits.

``int()`` and ``str.isdigit()`` accept "01", "+1", " 1" and Arabic-Indic or full-width digits;
a room named so would be a second room of the same consultation, with its own lobby and its
own six seats. Everywhere a client writes a number (room ids, ack ids, packet types), such
spellings are refused, not mapped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.signaling.raw import RawSocket
from yilian.server.clinic.rooms import consultation_id
from yilian.signaling.errors import InvalidPayload
from yilian.signaling.keys import RTC
from yilian.signaling.rooms import parse_room

NOT_CANONICAL = [
    "consultation:0{id}",
    "consultation:00{id}",
    "consultation:+{id}",
    " consultation:{id}",
    "consultation:{id} ",
    "consultation: {id}",
    "consultation:{id}\n",
    "Consultation:{id}",
    "consultation:{id}.0",
    "consultation:-{id}",
    "consultation:{arabic}",  # Arabic-Indic digits
    "consultation:{fullwidth}",  # full-width digits
    "consultation:{devanagari}",
    "consultation:0",
    "consultation:2147483648",
    "consultation:99999999999999999999",
    "teaching:07",
]


def _spellings(object_id: int) -> list[str]:
    digits = str(object_id)

    def shift(base: int) -> str:
        return "".join(chr(base + int(d)) for d in digits)

    return [name.format(id=digits, arabic=shift(0x660), fullwidth=shift(0xFF10),
                        devanagari=shift(0x966)) for name in NOT_CANONICAL]


def test_room_names_are_canonical() -> None:
    assert parse_room("consultation:17").name == "consultation:17"
    assert parse_room("consultation:2147483647").object_id == "2147483647"
    assert parse_room("teaching:7").name == "teaching:7"
    for name in _spellings(17):
        with pytest.raises(InvalidPayload):
            parse_room(name)
    # The clinic's rule reads ids as strictly, whatever reaches it.
    assert consultation_id("17") == 17
    for object_id in ("017", "+17", " 17", "17 ", "\u0661\u0667", "\uff11\uff17", "0",
                      "2147483648", "", "1e3"):
        assert consultation_id(object_id) is None, object_id


async def test_every_event_refuses_a_room_id_spelled_another_way(
    server: TestServer, doctors: dict[str, Any], rooms: dict[str, str]
) -> None:
    room = rooms["village"]
    object_id = int(room.split(":")[1])
    opened: list[RawSocket] = []
    async with aiohttp.ClientSession() as http:
        try:
            for name in ("expert", "village"):
                sock = RawSocket()
                opened.append(sock)
                await sock.connect(http, str(server.make_url("/")), doctors[name].token)
            expert, village = opened
            assert (await expert.call("join", {"room": room}))["ok"]
            for name in _spellings(object_id):
                for event, data in [
                    ("join", {"room": name}),
                    ("chat", {"room": name, "text": "hi"}),
                    ("leave", {"room": name}),
                    ("lobby", {"room": name, "enabled": True}),
                    ("admit", {"room": name, "peer_id": "x"}),
                ]:
                    ack = await village.call(event, data)
                    assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload", \
                        (event, name, ack)
            # The canonical name is the one room, and nothing else was opened.
            assert (await village.call("join", {"room": room}))["ok"]
            assert server.app[RTC].store.room_names() == [room]  # type: ignore[attr-defined]
        finally:
            await asyncio.gather(*(s.close() for s in opened))


async def test_non_ascii_digits_in_packet_headers_are_dropped_not_mapped(
    server: TestServer, doctors: dict[str, Any], rooms: dict[str, str],
    caplog: pytest.LogCaptureFixture
) -> None:
    room = rooms["village"]
    join = json.dumps(["join", {"room": room}])
    async with aiohttp.ClientSession() as http:
        sock = RawSocket()
        try:
            await sock.connect(http, str(server.make_url("/")), doctors["village"].token)
            caplog.set_level(logging.INFO)
            caplog.clear()
            arabic_one, arabic_two, arabic_four = "\u0661", "\u0662", "\u0664"
            for frame in (
                f"42/rtc,{arabic_one}{join}",  # ack id 1, spelled in Arabic-Indic
                f"4{arabic_two}/rtc,{join}",  # socket.io EVENT type
                f"{arabic_four}2/rtc,{join}",  # engine.io MESSAGE type
                f"42/rtc,\uff11{join}",  # full-width ack id
            ):
                await sock.send(frame)
            # None was read as a join: the room is empty, and the connection still works.
            ack = await sock.call("leave", {"room": room})
            assert ack["ok"] is False and ack["error"]["code"] == "not_in_room"
            assert server.app[RTC].store.room_names() == []  # type: ignore[attr-defined]
            assert not [f for f in sock.frames if f.startswith("43/rtc,1[")]
            assert (await sock.call("join", {"room": room}))["ok"]
            warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert all(r.exc_info is None for r in caplog.records)
            # At most one line per kind of garbage (socket.io frames, engine.io packets).
            assert sorted(r.name for r in warnings) == [
                "yilian.signaling.engineio", "yilian.signaling.server"], warnings
        finally:
            await sock.close()
