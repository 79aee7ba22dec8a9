"""Trickled ICE candidates (RTCIceCandidateInit) for the relay's peer connections."""

from __future__ import annotations

from typing import Any

from aiortc import RTCPeerConnection
from aiortc.sdp import candidate_from_sdp

from yilian.signaling.errors import InvalidPayload


def parse_candidate(candidate: dict[str, Any]) -> Any:
    """An aiortc candidate from an RTCIceCandidateInit; ``None`` for the end of candidates."""
    text = candidate.get("candidate") or ""
    if not text:
        return None
    try:
        parsed = candidate_from_sdp(text.removeprefix("candidate:"))
    except (AssertionError, ValueError, IndexError, KeyError):  # aiortc asserts on its shape
        raise InvalidPayload('"candidate.candidate" is not an ICE candidate') from None
    parsed.sdpMid = candidate.get("sdpMid")
    parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
    return parsed


async def add_candidate(pc: RTCPeerConnection, candidate: dict[str, Any]) -> None:
    """Add a trickled candidate to ``pc``; ``InvalidPayload`` if it does not fit."""
    parsed = parse_candidate(candidate)
    if parsed is None:
        return
    try:
        await pc.addIceCandidate(parsed)
    except (ValueError, KeyError, AttributeError) as exc:  # no such media section, ...
        raise InvalidPayload(f"the candidate does not fit the connection ({exc})") from None
