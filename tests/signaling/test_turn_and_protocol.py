"""TURN REST credentials and the validation of signalling payloads."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from yilian.signaling import protocol
from yilian.signaling.errors import InvalidPayload
from yilian.signaling.turn import ice_servers, turn_credential, verify_turn_credential

SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"


def test_turn_credential_is_coturn_rest_form() -> None:
    cred = turn_credential("s3cret", 42, ttl_seconds=600, now=1_700_000_000)
    assert cred.username == "1700000600:42"
    expected = base64.b64encode(
        hmac.new(b"s3cret", b"1700000600:42", hashlib.sha1).digest()
    ).decode()
    assert cred.credential == expected
    assert verify_turn_credential("s3cret", cred.username, cred.credential, now=1_700_000_599)
    assert not verify_turn_credential("s3cret", cred.username, cred.credential, now=1_700_000_600)
    assert not verify_turn_credential("other", cred.username, cred.credential, now=1_700_000_000)
    with pytest.raises(ValueError):
        turn_credential("", 42, ttl_seconds=600)


def test_ice_servers_list_only_what_is_configured() -> None:
    assert ice_servers(user_id=1, stun_urls=[], turn_urls=[], turn_secret="", ttl_seconds=60) == {
        "iceServers": [],
        "ttl": 60,
    }
    turn_urls = [
        "turn:turn.example.org:3478?transport=udp",
        "turn:turn.example.org:3478?transport=tcp",
        "turns:turn.example.org:443?transport=tcp",
    ]
    body = ice_servers(
        user_id=7,
        stun_urls=["stun:turn.example.org:3478"],
        turn_urls=turn_urls,
        turn_secret="s3cret",
        ttl_seconds=3600,
        now=1000,
    )
    assert body["iceServers"][0] == {"urls": ["stun:turn.example.org:3478"]}
    turn = body["iceServers"][1]
    assert turn["urls"] == turn_urls and turn["username"] == "4600:7"
    assert verify_turn_credential("s3cret", turn["username"], turn["credential"], now=1000)
    # TURN without a secret would only be refused by coturn: it is left out.
    no_secret = ice_servers(
        user_id=7, stun_urls=[], turn_urls=turn_urls, turn_secret="", ttl_seconds=60
    )
    assert no_secret["iceServers"] == []


def test_signal_payloads() -> None:
    offer = protocol.parse_signal({"to": "p1", "description": {"type": "offer", "sdp": SDP}})
    assert offer.to == "p1" and offer.payload == {"description": {"type": "offer", "sdp": SDP}}
    cand = protocol.parse_signal(
        {
            "to": "p1",
            "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"},
        }
    )
    assert (
        cand.payload["candidate"]["sdpMid"] == "0"
        and cand.payload["candidate"]["sdpMLineIndex"] is None
    )
    assert protocol.parse_signal({"to": "p1", "candidate": None}).payload == {"candidate": None}
    bad = [
        None,
        "offer",
        [],
        {"to": "p1"},
        {"description": {"type": "offer", "sdp": SDP}},
        {"to": 5, "description": {"type": "offer", "sdp": SDP}},
        {"to": "x" * 65, "description": {"type": "offer", "sdp": SDP}},
        {"to": "p1", "description": {"type": "offer", "sdp": SDP}, "candidate": None},
        {"to": "p1", "description": {"type": "bogus", "sdp": SDP}},
        {"to": "p1", "description": {"type": "offer", "sdp": "hello"}},
        {"to": "p1", "description": {"type": "offer", "sdp": "v=0" + "x" * 70000}},
        {"to": "p1", "description": "v=0"},
        {"to": "p1", "candidate": "candidate:1"},
        {"to": "p1", "candidate": {"candidate": 5}},
        {"to": "p1", "candidate": {"candidate": "c", "sdpMLineIndex": -1}},
        {"to": "p1", "candidate": {"candidate": "c", "sdpMLineIndex": True}},
    ]
    for payload in bad:
        with pytest.raises(InvalidPayload):
            protocol.parse_signal(payload)


def test_join_chat_and_lobby_payloads() -> None:
    assert protocol.parse_join({"room": "consultation:3"}).resume is None
    assert protocol.parse_join({"room": "consultation:3", "resume": "abc"}).resume == "abc"
    room, text = protocol.parse_chat({"room": "consultation:3", "text": "  BP 150/95  "})
    assert room.name == "consultation:3" and text == "BP 150/95"
    assert protocol.parse_lobby({"room": "consultation:3", "enabled": True})[1] is True
    for call, payload in [
        (protocol.parse_join, {"room": "consultation:3", "resume": 5}),
        (protocol.parse_join, {}),
        (protocol.parse_chat, {"room": "consultation:3", "text": "   "}),
        (protocol.parse_chat, {"room": "consultation:3", "text": "x" * 5000}),
        (protocol.parse_lobby, {"room": "consultation:3", "enabled": "yes"}),
    ]:
        with pytest.raises(InvalidPayload):
            call(payload)
    with pytest.raises(InvalidPayload):
        protocol.parse_room_peer({"room": "consultation:3"}, "admit")
