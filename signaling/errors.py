"""Signalling errors: each becomes an ``{"ok": false, "error": {...}}`` ack.

They sit in the one error hierarchy (``yilian.server.core.errors``), so a rule shared with the
HTTP API (an admission check raising ``Forbidden``) refuses a socket.io event the same way.
"""

from __future__ import annotations

from yilian.server.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RoomClosed,
    TooManyRequests,
    Unauthorized,
    YilianError,
)

__all__ = ["Forbidden", "InvalidPayload", "NotAvailable", "NotFound", "NotInRoom", "NotWaiting",
           "RateLimited", "RoomClosed", "RoomFull", "TooManyTabs", "SignalingError", "Unauthorized",
           "UnknownEvent", "UnknownPeer"]

#: What a ``/rtc`` event handler may raise.
SignalingError = YilianError


class InvalidPayload(BadRequest):
    code = "invalid_payload"


class UnknownEvent(BadRequest):
    code = "unknown_event"


class NotInRoom(Conflict):
    code = "not_in_room"


class UnknownPeer(NotFound):
    code = "unknown_peer"


class RoomFull(Conflict):
    code = "room_full"


class TooManyTabs(Conflict):
    """One user already holds ``rooms.MAX_PEERS_PER_USER`` peers in a teaching room."""

    code = "too_many_tabs"


class NotWaiting(Conflict):
    code = "not_waiting"


class NotAvailable(NotFound):
    code = "not_available"


class RateLimited(TooManyRequests):
    code = "rate_limited"
