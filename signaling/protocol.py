"""Validation of ``/rtc`` event payloads; anything malformed raises ``InvalidPayload``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yilian.server.core.api import MAX_ID
from yilian.signaling.errors import InvalidPayload
from yilian.signaling.rooms import RoomRef, parse_room

MAX_SDP_CHARS = 64 * 1024
MAX_CANDIDATE_CHARS = 2048
#: The default longest chat line (``YILIAN_RTC_CHAT_MAX_CHARS`` sets the server's).
MAX_CHAT_CHARS = 2000
MAX_PEER_ID_CHARS = 64
DESCRIPTION_TYPES = frozenset({"offer", "answer", "pranswer", "rollback"})


def _object(data: Any, event: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidPayload(f'"{event}" takes a JSON object')
    return data


def _peer_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_PEER_ID_CHARS:
        raise InvalidPayload(f'"{field}" must be a peer id string')
    return value


@dataclass(frozen=True)
class JoinRequest:
    room: RoomRef
    resume: str | None


def parse_join(data: Any) -> JoinRequest:
    body = _object(data, "join")
    resume = body.get("resume")
    return JoinRequest(
        parse_room(body.get("room")), None if resume is None else _peer_id(resume, "resume")
    )


def parse_room_only(data: Any, event: str) -> RoomRef:
    return parse_room(_object(data, event).get("room"))


def parse_room_peer(data: Any, event: str) -> tuple[RoomRef, str]:
    """For ``admit`` and ``refuse``: ``{"room", "peer_id"}``."""
    body = _object(data, event)
    return parse_room(body.get("room")), _peer_id(body.get("peer_id"), "peer_id")


def parse_lobby(data: Any) -> tuple[RoomRef, bool]:
    body = _object(data, "lobby")
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise InvalidPayload('"enabled" must be true or false')
    return parse_room(body.get("room")), enabled


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_chat(data: Any, max_chars: int = MAX_CHAT_CHARS) -> tuple[RoomRef, str]:
    body = _object(data, "chat")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidPayload('"text" must be a non-empty string')
    if len(text) > max_chars:
        raise InvalidPayload(f'"text" is longer than {max_chars} characters')
    if "\x00" in text or _has_surrogate(text):
        raise InvalidPayload('"text" may not contain NUL characters or unpaired surrogates')
    return parse_room(body.get("room")), text.strip()


@dataclass(frozen=True)
class SignalRequest:
    to: str
    payload: dict[str, Any]  # exactly one of "description" / "candidate", cleaned
    room: RoomRef | None = None  # which room's relay, for signals to "sfu"


def _description(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidPayload('"description" must be an object {"type", "sdp"}')
    kind, sdp = value.get("type"), value.get("sdp", "")
    if kind not in DESCRIPTION_TYPES:
        raise InvalidPayload(f'"description.type" must be one of {sorted(DESCRIPTION_TYPES)}')
    if not isinstance(sdp, str) or len(sdp) > MAX_SDP_CHARS:
        raise InvalidPayload(
            f'"description.sdp" must be a string of at most {MAX_SDP_CHARS} characters'
        )
    if kind != "rollback" and not sdp.startswith("v=0"):
        raise InvalidPayload('"description.sdp" is not an SDP document')
    return {"type": kind, "sdp": sdp}


def _candidate(value: Any) -> dict[str, Any] | None:
    """An RTCIceCandidateInit; ``null`` or an empty candidate string ends the candidates."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidPayload('"candidate" must be an RTCIceCandidateInit object or null')
    text = value.get("candidate", "")
    if not isinstance(text, str) or len(text) > MAX_CANDIDATE_CHARS:
        raise InvalidPayload('"candidate.candidate" must be a string')
    mid = value.get("sdpMid")
    index = value.get("sdpMLineIndex")
    ufrag = value.get("usernameFragment")
    if mid is not None and (not isinstance(mid, str) or len(mid) > 64):
        raise InvalidPayload('"candidate.sdpMid" must be a string or null')
    if index is not None and (
        isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 1024
    ):
        raise InvalidPayload('"candidate.sdpMLineIndex" must be a small integer or null')
    if ufrag is not None and (not isinstance(ufrag, str) or len(ufrag) > 256):
        raise InvalidPayload('"candidate.usernameFragment" must be a string or null')
    return {"candidate": text, "sdpMid": mid, "sdpMLineIndex": index, "usernameFragment": ufrag}


def parse_signal(data: Any) -> SignalRequest:
    body = _object(data, "signal")
    to = _peer_id(body.get("to"), "to")
    has_description, has_candidate = "description" in body, "candidate" in body
    if has_description == has_candidate:
        raise InvalidPayload('"signal" carries exactly one of "description" or "candidate"')
    room = None if body.get("room") is None else parse_room(body["room"])
    if has_description:
        return SignalRequest(to, {"description": _description(body["description"])}, room)
    return SignalRequest(to, {"candidate": _candidate(body["candidate"])}, room)


LAYERS = ("auto", "high", "low")


def _layer(value: Any, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if value not in LAYERS:
        raise InvalidPayload(f'"layer" must be one of {list(LAYERS)}')
    return str(value)


def parse_subscribe(data: Any) -> tuple[RoomRef, str]:
    """``subscribe`` ``{"room", "layer"?}``."""
    body = _object(data, "subscribe")
    return parse_room(body.get("room")), _layer(body.get("layer"), "auto")


def parse_layer(data: Any) -> tuple[RoomRef, str]:
    """``layer`` ``{"room", "layer"}``."""
    body = _object(data, "layer")
    return parse_room(body.get("room")), _layer(body.get("layer"))


def parse_answered(data: Any) -> tuple[RoomRef, int]:
    """``answered`` ``{"room", "id"}``: a question's (chat line's) id."""
    body = _object(data, "answered")
    message_id = body.get("id")
    if isinstance(message_id, bool) or not isinstance(message_id, int) or not (
            0 < message_id <= MAX_ID):
        raise InvalidPayload('"id" must be the id of a chat message')
    return parse_room(body.get("room")), message_id
