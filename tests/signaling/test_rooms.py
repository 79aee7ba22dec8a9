"""The room rules as pure code: membership, capacity, lobby, polite roles, resume and grace."""

from __future__ import annotations

import pytest

from yilian.signaling import rooms
from yilian.signaling.errors import (
    Forbidden,
    InvalidPayload,
    NotInRoom,
    NotWaiting,
    RoomFull,
    UnknownPeer,
)
from yilian.signaling.rooms import CONSULTATION_CAPACITY, Identity, RoomState, parse_room

HOST = Identity(1, "Dr Expert", "specialist", host=True)
VILLAGE = Identity(2, "Dr Village", "village_doctor")
TOWN = Identity(3, "Dr Town", "township_doctor")


def test_parse_room_accepts_the_two_kinds_and_refuses_everything_else() -> None:
    assert parse_room("consultation:42").name == "consultation:42"
    assert parse_room("teaching:7").kind == "teaching"
    assert parse_room("consultation:42").capacity == CONSULTATION_CAPACITY
    for bad in [
        "",
        "consultation:",
        "room:1",
        "consultation:1:2",
        "consultation:a b",
        42,
        None,
        ["x"],
    ]:
        with pytest.raises(InvalidPayload):
            parse_room(bad)


def test_join_lists_earlier_peers_and_the_newcomer_is_polite_towards_them() -> None:
    state = RoomState("consultation:1")
    first = rooms.join(state, 6, HOST, "sid-a", now=0)
    second = rooms.join(state, 6, VILLAGE, "sid-b", now=0)
    assert first.peers == [] and not first.resumed and not first.waiting
    assert [p.peer_id for p in second.peers] == [first.peer.peer_id]
    view = second.peers[0].public_for(second.peer)
    assert view == {**first.peer.public(), "polite": True}
    assert first.peer.public_for(second.peer)["polite"] is True
    assert second.peer.public_for(first.peer)["polite"] is False
    assert first.peer.peer_id != second.peer.peer_id and len(first.peer.peer_id) >= 16


def test_capacity_is_six_for_a_consultation() -> None:
    state = RoomState("consultation:1")
    for i in range(CONSULTATION_CAPACITY):
        rooms.join(
            state, CONSULTATION_CAPACITY, Identity(i, f"u{i}", "specialist"), f"sid{i}", now=0
        )
    with pytest.raises(RoomFull):
        rooms.join(state, CONSULTATION_CAPACITY, TOWN, "sid-x", now=0)
    assert len(state.members()) == CONSULTATION_CAPACITY


def test_one_socket_cannot_join_twice() -> None:
    state = RoomState("consultation:1")
    rooms.join(state, 6, HOST, "sid-a", now=0)
    with pytest.raises(InvalidPayload):
        rooms.join(state, 6, HOST, "sid-a", now=0)


def test_resume_within_grace_keeps_the_peer_id_and_nobody_expires() -> None:
    state = RoomState("consultation:1")
    a = rooms.join(state, 6, HOST, "sid-a", now=0).peer
    b = rooms.join(state, 6, VILLAGE, "sid-b", now=0).peer
    held = rooms.suspend(state, "sid-b", until=15)
    assert held is b and not b.connected
    assert [p.peer_id for p in state.members()] == [a.peer_id, b.peer_id]
    again = rooms.join(state, 6, VILLAGE, "sid-b2", now=10, resume=b.peer_id)
    assert again.resumed and again.peer.peer_id == b.peer_id and again.expired == []
    assert again.peer.sid == "sid-b2" and again.peer.connected
    assert [p.peer_id for p in again.peers] == [a.peer_id]
    # The old socket's late disconnect no longer holds anything.
    assert rooms.suspend(state, "sid-b", until=30) is None


def test_after_the_grace_period_the_peer_is_gone_and_resume_gives_a_new_id() -> None:
    state = RoomState("consultation:1")
    rooms.join(state, 6, HOST, "sid-a", now=0)
    b = rooms.join(state, 6, VILLAGE, "sid-b", now=0).peer
    rooms.suspend(state, "sid-b", until=15)
    assert rooms.expire_suspended(state, now=14) == []
    late = rooms.join(state, 6, VILLAGE, "sid-b2", now=16, resume=b.peer_id)
    assert not late.resumed and late.peer.peer_id != b.peer_id
    assert [p.peer_id for p in late.expired] == [b.peer_id]


def test_resume_of_someone_elses_peer_id_is_a_fresh_join() -> None:
    state = RoomState("consultation:1")
    b = rooms.join(state, 6, VILLAGE, "sid-b", now=0).peer
    rooms.suspend(state, "sid-b", until=15)
    thief = rooms.join(state, 6, TOWN, "sid-t", now=1, resume=b.peer_id)
    assert not thief.resumed and thief.peer.peer_id != b.peer_id
    assert (
        state.peers[b.peer_id].user_id == VILLAGE.user_id and not state.peers[b.peer_id].connected
    )


def test_lobby_holds_non_hosts_until_admitted() -> None:
    state = RoomState("consultation:1")
    host = rooms.join(state, 6, HOST, "sid-h", now=0).peer
    rooms.set_lobby(state, 6, "sid-h", True)
    waiting = rooms.join(state, 6, VILLAGE, "sid-v", now=0)
    assert waiting.waiting and waiting.peers == []
    assert [p.peer_id for p in state.members()] == [host.peer_id]
    with pytest.raises(UnknownPeer):
        state.member(waiting.peer.peer_id)
    peer, others = rooms.admit(state, 6, "sid-h", waiting.peer.peer_id)
    assert peer.admitted and [p.peer_id for p in others] == [host.peer_id]
    with pytest.raises(NotWaiting):
        rooms.admit(state, 6, "sid-h", waiting.peer.peer_id)


def test_only_a_host_manages_the_lobby_and_refusal_removes_the_peer() -> None:
    state = RoomState("consultation:1")
    rooms.join(state, 6, HOST, "sid-h", now=0)
    rooms.join(state, 6, TOWN, "sid-t", now=0)
    with pytest.raises(Forbidden):
        rooms.set_lobby(state, 6, "sid-t", True)
    with pytest.raises(NotInRoom):
        rooms.set_lobby(state, 6, "sid-nobody", True)
    rooms.set_lobby(state, 6, "sid-h", True)
    v = rooms.join(state, 6, VILLAGE, "sid-v", now=0).peer
    with pytest.raises(Forbidden):
        rooms.refuse(state, "sid-t", v.peer_id)
    assert rooms.refuse(state, "sid-h", v.peer_id) is v
    assert v.peer_id not in state.peers


def test_turning_the_lobby_off_admits_whoever_waits() -> None:
    state = RoomState("consultation:1")
    rooms.join(state, 6, HOST, "sid-h", now=0)
    rooms.set_lobby(state, 6, "sid-h", True)
    v = rooms.join(state, 6, VILLAGE, "sid-v", now=0).peer
    t = rooms.join(state, 6, TOWN, "sid-t", now=0).peer
    assert rooms.set_lobby(state, 6, "sid-h", False) == [v, t]
    assert len(state.members()) == 3 and state.waiting() == []


def test_leave_removes_what_the_socket_holds_and_state_round_trips() -> None:
    state = RoomState("consultation:1")
    a = rooms.join(state, 6, HOST, "sid-a", now=0).peer
    rooms.join(state, 6, VILLAGE, "sid-b", now=0)
    copy = RoomState.from_json(state.to_json())
    assert copy.to_json() == state.to_json()
    assert rooms.leave(state, "sid-a") is a
    assert rooms.leave(state, "sid-a") is None
    assert [p.user_id for p in state.members()] == [VILLAGE.user_id]


def test_an_admitted_peer_is_the_newest_member_hence_polite() -> None:
    state = RoomState("consultation:1")
    rooms.join(state, 6, HOST, "sid-h", now=0)
    rooms.set_lobby(state, 6, "sid-h", True)
    early = rooms.join(state, 6, VILLAGE, "sid-v", now=0).peer
    rooms.set_lobby(state, 6, "sid-h", False)
    rooms.set_lobby(state, 6, "sid-h", True)
    late = rooms.join(state, 6, TOWN, "sid-t", now=0).peer
    peer, others = rooms.admit(state, 6, "sid-h", late.peer_id)
    assert all(m.public_for(peer)["polite"] for m in others)
    assert early in others
