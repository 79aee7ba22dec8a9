"""Everything the server must refuse, and proof that nothing leaks between rooms."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestServer

from tests.signaling.conftest import MakeClient, expire_token, quiet_pair, until
from tests.support.rtc_client import NAMESPACE, RtcClient
from yilian.server.core.settings import Settings

SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"


async def _refused_connect(server: TestServer, auth: Any) -> list[Any]:
    """Connect with ``auth``; return what ``connect_error`` delivered."""
    errors: list[Any] = []
    client = socketio.AsyncClient(reconnection=False)

    async def on_error(data: Any) -> None:
        errors.append(data)

    client.on("connect_error", on_error, namespace=NAMESPACE)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            str(server.make_url("/")),
            namespaces=[NAMESPACE],
            auth=auth,
            transports=["websocket"],
            wait_timeout=5,
        )
    await client.shutdown()
    return errors


async def test_bad_missing_revoked_and_expired_tokens_get_connect_error(
    server: TestServer, settings: Settings, doctors: dict[str, Any], api: Any
) -> None:
    unauthorized = [{"message": "unauthorized"}]
    assert await _refused_connect(server, None) == unauthorized
    assert await _refused_connect(server, {"token": "not-a-token"}) == unauthorized
    assert await _refused_connect(server, {"token": ""}) == unauthorized
    assert await _refused_connect(server, {"token": 12345}) == unauthorized
    assert await _refused_connect(server, "Bearer x") == unauthorized
    assert await _refused_connect(server, {"token": "x" * 10_000}) == unauthorized

    expiring = await api.login("township")
    await expire_token(settings.resolved_database_url, expiring.token)
    assert await _refused_connect(server, {"token": expiring.token}) == unauthorized

    revoked = await api.login("township")
    assert (await revoked.post("/api/auth/logout"))[0] in (200, 204)
    assert await _refused_connect(server, {"token": revoked.token}) == unauthorized


async def test_only_participants_of_an_open_consultation_may_join(
    doctors: dict[str, Any], rooms: dict[str, str], make_client: MakeClient
) -> None:
    room = rooms["village"]
    for outsider in ("county", "guilin_doctor", "township"):
        client = await make_client(doctors[outsider], auto_negotiate=False)
        ack = await client.join(room)
        assert ack["ok"] is False and ack["error"]["code"] == "forbidden", (outsider, ack)
    # A teaching room's audience is its invited institutions: the demo's first session
    # invites Guangdong's, not Guilin's.
    guilin = await make_client(doctors["guilin_doctor"], auto_negotiate=False)
    ack = await guilin.join("teaching:1")
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden", ack
    village = await make_client(doctors["village"], auto_negotiate=False)
    for name, code in [
        ("consultation:999999", "forbidden"),
        ("consultation:99999999999999", "invalid_payload"),  # beyond any id
        (rooms["closed"], "room_closed"),
        ("teaching:999999", "forbidden"),  # no such session: refused as "not yours"
    ]:
        ack = await village.join(name)
        assert ack["ok"] is False and ack["error"]["code"] == code, (name, ack)
    assert (await village.join(room))["ok"]


async def test_signal_and_chat_never_cross_rooms(
    doctors: dict[str, Any], rooms: dict[str, str], make_client: MakeClient
) -> None:
    village = await make_client(doctors["village"], auto_negotiate=False)
    expert_v = await make_client(doctors["expert"], "expert-v", auto_negotiate=False)
    township = await make_client(doctors["township"], auto_negotiate=False)
    expert_t = await make_client(doctors["expert"], "expert-t", auto_negotiate=False)
    assert (await expert_v.join(rooms["village"]))["ok"]
    assert (await village.join(rooms["village"]))["ok"]
    assert (await expert_t.join(rooms["township"]))["ok"]
    assert (await township.join(rooms["township"]))["ok"]

    # Before joining, nobody can be reached at all.
    stranger = await make_client(doctors["county"], auto_negotiate=False)
    ack = await stranger.call(
        "signal", {"to": village.peer_id, "description": {"type": "offer", "sdp": SDP}}
    )
    assert ack["ok"] is False and ack["error"]["code"] == "unknown_peer"

    offer = {"type": "offer", "sdp": SDP}
    ack = await village.call("signal", {"to": township.peer_id, "description": offer})
    assert ack == {
        "ok": False,
        "error": {
            "code": "unknown_peer",
            "message": f'no peer "{township.peer_id}" shares a room with you',
        },
    }
    ack = await village.call("signal", {"to": expert_t.peer_id, "candidate": None})
    assert ack["ok"] is False and ack["error"]["code"] == "unknown_peer"
    ack = await village.call("chat", {"room": rooms["township"], "text": "hello?"})
    assert ack["ok"] is False and ack["error"]["code"] == "not_in_room"
    ack = await village.call("leave", {"room": rooms["township"]})
    assert ack["ok"] is False and ack["error"]["code"] == "not_in_room"

    # Within the room, delivery is to the named peer only.
    assert (await village.call("signal", {"to": expert_v.peer_id, "description": offer}))["ok"]
    assert (await village.call("chat", {"room": rooms["village"], "text": "in room"}))["ok"]
    await until(lambda: any(e == "signal" for e, _ in expert_v.events))
    await until(lambda: any(e == "chat" for e, _ in expert_v.events))
    await asyncio.sleep(0.2)
    for other in (township, expert_t, stranger):
        assert [e for e, _ in other.events if e in ("signal", "chat", "peer-joined")] == [
            e for e, _ in other.events if e == "peer-joined"
        ]
        assert not [e for e, _ in other.events if e in ("signal", "chat")], other.label
    assert [d["from"] for e, d in expert_v.events if e == "signal"] == [village.peer_id]


async def test_malformed_payloads_and_unknown_events_get_error_acks(
    doctors: dict[str, Any], rooms: dict[str, str], make_client: MakeClient
) -> None:
    expert, village, _ = await quiet_pair(make_client, doctors, rooms["village"])
    bad: list[tuple[str, Any, str]] = [
        ("join", "consultation:1", "invalid_payload"),
        ("join", None, "invalid_payload"),
        ("join", {"room": 5}, "invalid_payload"),
        ("join", {"room": "consultation:1; DROP TABLE"}, "invalid_payload"),
        ("join", {"room": rooms["village"], "resume": {"x": 1}}, "invalid_payload"),
        ("join", {"room": rooms["village"]}, "invalid_payload"),  # already joined
        ("signal", [1, 2, 3], "invalid_payload"),
        ("signal", {"to": expert.peer_id}, "invalid_payload"),
        (
            "signal",
            {"to": expert.peer_id, "description": {"type": "offer", "sdp": "nope"}},
            "invalid_payload",
        ),
        (
            "signal",
            {"to": expert.peer_id, "description": {"type": "offer", "sdp": "v=0" + "x" * 70_000}},
            "invalid_payload",
        ),
        ("signal", {"to": expert.peer_id, "candidate": {"candidate": 1}}, "invalid_payload"),
        # "sfu" is a peer of teaching rooms only: not of a socket in none, nor of a consultation.
        ("signal", {"to": "sfu", "candidate": None}, "not_in_room"),
        ("signal", {"to": "sfu", "room": rooms["village"], "candidate": None}, "not_available"),
        ("signal", {"to": "sfu", "room": "teaching:1", "candidate": None}, "not_in_room"),
        ("chat", {"room": rooms["village"], "text": ""}, "invalid_payload"),
        ("chat", {"room": rooms["village"], "text": "x" * 5000}, "invalid_payload"),
        ("chat", {"room": rooms["village"]}, "invalid_payload"),
        ("leave", {}, "invalid_payload"),
        ("lobby", {"room": rooms["village"], "enabled": "on"}, "invalid_payload"),
        ("lobby", {"room": rooms["village"], "enabled": True}, "forbidden"),  # not the host
        ("admit", {"room": rooms["village"], "peer_id": expert.peer_id}, "forbidden"),
        ("refuse", {"room": rooms["village"]}, "invalid_payload"),
        ("hack", {"room": rooms["village"]}, "unknown_event"),
        ("connect", {"token": "x"}, "unknown_event"),
        ("disconnect", {}, "unknown_event"),
        ("peer-left", {"peer_id": expert.peer_id}, "unknown_event"),
    ]
    for event, payload, code in bad:
        ack = await village.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, payload, ack)
        assert ack["error"]["message"]
    # Several arguments, binary, and events without an ack are refused without a crash.
    ack = await village.sio.call("signal", ({"to": expert.peer_id}, 2), namespace=NAMESPACE)
    assert ack["ok"] is False
    ack = await village.call("chat", {"room": rooms["village"], "text": b"\x00\x01"})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload"
    for event in ("signal", "join", "nonsense"):
        await village.sio.emit(event, {"garbage": True}, namespace=NAMESPACE)
    # The connection and the room still work, and the expert heard nothing of it.
    assert (await village.call("chat", {"room": rooms["village"], "text": "still here"}))["ok"]
    await until(lambda: any(e == "chat" for e, _ in expert.events))
    assert not [e for e, _ in expert.events if e in ("signal", "peer-left")]


async def test_lobby_admit_and_refuse(
    doctors: dict[str, Any], rooms: dict[str, str], make_client: MakeClient
) -> None:
    room = rooms["village"]
    expert = await make_client(doctors["expert"], auto_negotiate=False)
    await expert.join(room)
    assert await expert.call("lobby", {"room": room, "enabled": True}) == {
        "ok": True,
        "lobby": True,
        "admitted": [],
    }
    village = await make_client(doctors["village"])
    held = await village.join(room)
    assert held == {
        "ok": True,
        "peer_id": held["peer_id"],
        "waiting": True,
        "peers": [],
        "resumed": False,
    }
    await until(lambda: any(e == "lobby-waiting" for e, _ in expert.events))
    waiting = next(d for e, d in expert.events if e == "lobby-waiting")
    assert (
        waiting["peer_id"] == held["peer_id"]
        and waiting["user_id"] == doctors["village"].user["id"]
    )
    # A waiting peer is nobody's peer yet.
    assert (await village.call("chat", {"room": room, "text": "hi"}))["error"][
        "code"
    ] == "not_in_room"
    ack = await village.call("signal", {"to": expert.peer_id, "candidate": None})
    assert ack["error"]["code"] == "unknown_peer"
    assert not [e for e, _ in expert.events if e == "peer-joined"]

    assert await expert.call("admit", {"room": room, "peer_id": held["peer_id"]}) == {"ok": True}
    await until(lambda: any(e == "admitted" for e, _ in village.events))
    admitted = next(d for e, d in village.events if e == "admitted")
    assert admitted["room"] == room and [p["peer_id"] for p in admitted["peers"]] == [
        expert.peer_id
    ]
    assert admitted["peers"][0]["polite"] is True
    await until(lambda: any(e == "peer-joined" for e, _ in expert.events))
    # Admitted, the newcomer offers and the call connects.
    link = expert.links[held["peer_id"]]
    await asyncio.wait_for(link.first_frame.wait(), 15)

    second = await make_client(doctors["village"], "village-2", auto_negotiate=False)
    other = await second.join(room)
    assert other["waiting"] is True
    ack = await expert.call("refuse", {"room": room, "peer_id": other["peer_id"]})
    assert ack == {"ok": True}
    await until(lambda: ("refused", {"room": room, "peer_id": other["peer_id"]}) in second.events)
    again = await expert.call("admit", {"room": room, "peer_id": other["peer_id"]})
    assert again["ok"] is False and again["error"]["code"] == "not_waiting"
    # The refused socket may ask again.
    assert (await second.join(room))["waiting"] is True


async def test_the_rtc_client_refuses_nothing_silently(server: TestServer) -> None:
    client = RtcClient(str(server.make_url("/")), "bogus")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect()
    await client.close()
