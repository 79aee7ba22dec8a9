"""Two real aiortc peers meet through the running server: video, data channel, chat, leave."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.signaling.conftest import MakeClient, connected_pair, quiet_pair, until
from tests.support.rtc_client import RtcClient


async def test_two_doctors_meet_on_video(
    doctors: dict[str, Any], rooms: dict[str, str], make_client: MakeClient
) -> None:
    village = await make_client(doctors["village"])
    expert = await make_client(doctors["expert"])
    room = rooms["village"]

    first = await expert.join(room)
    assert first["ok"] and first["peers"] == [] and first["host"] is True and first["lobby"] == []
    second = await village.join(room)
    assert second["ok"] and second["host"] is False and second["resumed"] is False
    assert second["peers"] == [
        {
            "peer_id": first["peer_id"],
            "user_id": doctors["expert"].user["id"],
            "display_name": doctors["expert"].user["display_name"],
            "role": "specialist",
            "polite": True,
        }
    ]
    await until(lambda: any(e == "peer-joined" for e, _ in expert.events))
    joined = next(d for e, d in expert.events if e == "peer-joined")
    assert joined == {
        "peer_id": second["peer_id"],
        "user_id": doctors["village"].user["id"],
        "display_name": doctors["village"].user["display_name"],
        "role": "village_doctor",
        "polite": False,
    }

    await connected_pair(village, expert)
    to_expert, to_village = village.links[first["peer_id"]], expert.links[second["peer_id"]]
    assert to_expert.messages == ["hello from expert"]
    assert to_village.messages == ["hello from village"]
    await until(lambda: to_expert.frames_received >= 10 and to_village.frames_received >= 10)
    assert to_expert.state == to_village.state == "connected"
    # Every signal the expert received came from the village doctor's peer id.
    assert {d["from"] for e, d in expert.events if e == "signal"} == {second["peer_id"]}


async def test_chat_is_relayed_and_kept_with_the_consultation(
    doctors: dict[str, Any], rooms: dict[str, str], make_client: MakeClient
) -> None:
    room = rooms["village"]
    village = await make_client(doctors["village"], auto_negotiate=False)
    expert = await make_client(doctors["expert"], auto_negotiate=False)
    await expert.join(room)
    joined = await village.join(room)
    ack = await village.call("chat", {"room": room, "text": "INR 3.4 today; she has no bleeding."})
    assert ack["ok"] is True and ack["at"]
    await expert.call("chat", {"room": room, "text": "Skip one dose, then 2.5 mg daily."})
    await until(lambda: sum(e == "chat" for e, _ in village.events) == 2)
    said = [d for e, d in expert.events if e == "chat"]
    assert (
        said[0]["from"] == joined["peer_id"] and said[0]["user_id"] == doctors["village"].user["id"]
    )
    assert said[0]["room"] == room and said[0]["text"] == "INR 3.4 today; she has no bleeding."

    consultation_id = int(room.split(":")[1])
    status, body = await doctors["village"].get(f"/api/consultations/{consultation_id}")
    assert status == 200
    assert [(m["user_id"], m["text"]) for m in body["chat"]] == [
        (doctors["village"].user["id"], "INR 3.4 today; she has no bleeding."),
        (doctors["expert"].user["id"], "Skip one dose, then 2.5 mg daily."),
    ]
    assert body["chat"][0]["peer_id"] == joined["peer_id"]
    assert body["chat"][1]["display_name"] == doctors["expert"].user["display_name"]
    # Other consultations do not carry it.
    other = int(rooms["township"].split(":")[1])
    status, body = await doctors["expert"].get(f"/api/consultations/{other}")
    assert status == 200 and body["chat"] == []


async def test_leave_and_clean_disconnect_tell_the_room_at_once(
    doctors: dict[str, Any], rooms: dict[str, str], make_client: MakeClient
) -> None:
    room = rooms["village"]
    expert, village, first = await quiet_pair(make_client, doctors, room)
    assert await village.leave() == {"ok": True}
    await until(lambda: ("peer-left", {"peer_id": first}) in expert.events)
    again = await village.join(room)
    assert again["peer_id"] != first
    await village.close()  # leaves before it disconnects: no grace period
    await until(lambda: ("peer-left", {"peer_id": again["peer_id"]}) in expert.events, 1.0)


async def test_mesh_holds_six_peers_and_refuses_the_seventh(
    doctors: dict[str, Any], rooms: dict[str, str], make_client: MakeClient
) -> None:
    room = rooms["village"]
    clients: list[RtcClient] = []
    for i in range(6):
        user = doctors["expert"] if i % 2 else doctors["village"]
        client = await make_client(user, f"device{i}", auto_negotiate=False)
        ack = await client.join(room)
        assert ack["ok"] and len(ack["peers"]) == i
        assert all(p["polite"] for p in ack["peers"])
        clients.append(client)
    seventh = await make_client(doctors["village"], "device6", auto_negotiate=False)
    assert await seventh.join(room) == {
        "ok": False,
        "error": {"code": "room_full", "message": f"{room} already has 6 participants"},
    }
    # Every member heard about every later member exactly once.
    await until(lambda: sum(e == "peer-joined" for e, _ in clients[0].events) == 5)
    await asyncio.sleep(0.1)
    assert [sum(e == "peer-joined" for e, _ in c.events) for c in clients] == [5, 4, 3, 2, 1, 0]
