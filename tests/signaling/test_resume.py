"""A dropped socket resumes within the grace period; presence is cleaned up when it ends."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.signaling.conftest import GRACE_SECONDS, MakeClient, connected_pair, quiet_pair, until
from tests.support.rtc_client import RtcClient


async def _call(
    make_client: MakeClient, doctors: dict[str, Any], room: str
) -> tuple[RtcClient, RtcClient]:
    expert = await make_client(doctors["expert"])
    await expert.join(room)
    village = await make_client(doctors["village"])
    await village.join(room)
    await connected_pair(village, expert)
    return village, expert


def _lefts(client: RtcClient) -> list[Any]:
    return [d for e, d in client.events if e == "peer-left"]


async def test_resume_after_a_cut_socket_keeps_the_peer_and_the_media(
    doctors: dict[str, Any], rooms: dict[str, str], make_client: MakeClient
) -> None:
    village, expert = await _call(make_client, doctors, rooms["village"])
    peer_id = village.peer_id
    to_village = next(iter(expert.links.values()))
    old_sid = village.sio.get_sid("/rtc")

    await village.drop_socket()
    await asyncio.wait_for(village.resumed.wait(), 10)
    assert village.sio.get_sid("/rtc") != old_sid
    (resume,) = [d for e, d in village.events if e == "resume"]
    assert resume["ok"] and resume["resumed"] is True and resume["peer_id"] == peer_id
    assert [p["peer_id"] for p in resume["peers"]] == [expert.peer_id]

    # The media path survived the socket: frames keep coming, no renegotiation needed.
    before = to_village.frames_received
    await until(lambda: to_village.frames_received >= before + 15)
    assert to_village.generation == 1 and to_village.remote_restarts == 0
    # Well past the grace period, nobody was told the village doctor left.
    await asyncio.sleep(GRACE_SECONDS + 0.5)
    assert _lefts(expert) == [] and not [e for e, _ in expert.events if e == "peer-joined"][1:]
    # Signalling works on the new socket.
    ack = await village.call("chat", {"room": rooms["village"], "text": "back"})
    assert ack["ok"]
    await until(lambda: "chat" in [e for e, _ in expert.events])


async def test_resume_restarts_ice_when_the_media_path_died(
    doctors: dict[str, Any], rooms: dict[str, str], make_client: MakeClient
) -> None:
    village, expert = await _call(make_client, doctors, rooms["village"])
    to_expert = next(iter(village.links.values()))
    to_village = next(iter(expert.links.values()))

    # The network drop took the socket and the media path with it.
    await to_expert.pc.close()
    await village.drop_socket()
    await asyncio.wait_for(village.resumed.wait(), 10)

    # The resumed side saw its connection dead and offered again with new ICE credentials;
    # the other side took that as an ICE restart.
    async with asyncio.timeout(15):
        await asyncio.gather(to_village.first_frame.wait(), to_expert.first_frame.wait())
        await asyncio.gather(to_village.connected.wait(), to_expert.connected.wait())
    assert to_expert.generation == 2 and to_village.generation == 2
    assert to_village.remote_restarts == 1
    before = to_village.frames_received
    await until(lambda: to_village.frames_received >= before + 10)
    assert _lefts(expert) == []
    assert village.peer_id == next(d for e, d in village.events if e == "resume")["peer_id"]


async def test_presence_is_cleaned_up_when_the_grace_period_ends(
    doctors: dict[str, Any], rooms: dict[str, str], make_client: MakeClient
) -> None:
    room = rooms["village"]
    expert, village, gone = await quiet_pair(make_client, doctors, room)

    village.sio.reconnection = False  # this one never comes back
    dropped_at = time.monotonic()
    await village.drop_socket()
    await until(lambda: _lefts(expert) == [{"peer_id": gone}], GRACE_SECONDS + 5)
    waited = time.monotonic() - dropped_at
    assert GRACE_SECONDS - 0.3 <= waited <= GRACE_SECONDS + 2, waited

    # A late resume gets a new identity instead of the expired one.
    late = await make_client(doctors["village"], auto_negotiate=False)
    ack = await late.call("join", {"room": room, "resume": gone})
    assert ack["ok"] and ack["resumed"] is False and ack["peer_id"] != gone
    # Someone else's peer id cannot be resumed either.
    thief = await make_client(doctors["expert"], "thief", auto_negotiate=False)
    stolen = await thief.call("join", {"room": room, "resume": ack["peer_id"]})
    assert stolen["ok"] and stolen["resumed"] is False and stolen["peer_id"] != ack["peer_id"]
