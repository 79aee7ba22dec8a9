"""Signalling errors: each becomes an ``{"ok": false, "error": {...}}`` ack."""

from __future__ import annotations

from typing import Any


class SignalingError(Exception):
    """Root of the errors a ``/rtc`` event handler may raise; carries a snake_case code."""

    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def ack(self) -> dict[str, Any]:
        """The error acknowledgement sent back to the client."""
        return {"ok": False, "error": {"code": self.code, "message": self.message}}


class InvalidPayload(SignalingError):
    code = "invalid_payload"


class UnknownEvent(SignalingError):
    code = "unknown_event"


class Forbidden(SignalingError):
    code = "forbidden"


class NotInRoom(SignalingError):
    code = "not_in_room"


class UnknownPeer(SignalingError):
    code = "unknown_peer"


class RoomFull(SignalingError):
    code = "room_full"


class NotWaiting(SignalingError):
    code = "not_waiting"


class NotAvailable(SignalingError):
    code = "not_available"


class RateLimited(SignalingError):
    code = "rate_limited"
