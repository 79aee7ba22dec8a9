"""The domain-error hierarchy; one middleware maps it to the JSON error shape."""

from __future__ import annotations

from typing import Any


def error_body(code: str, message: str, details: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """The one error shape: ``{"error": {"code", "message", "details"?}}`` (HTTP bodies always
    carry ``details``; socket.io acks only when there are some)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


class YilianError(Exception):
    """Root of every error a handler may raise; carries HTTP status and a snake_case code."""

    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}

    def to_json(self) -> dict[str, Any]:
        """The body of the error response."""
        return error_body(self.code, self.message, self.details)

    def ack(self) -> dict[str, Any]:
        """The socket.io acknowledgement of a refused event."""
        return {"ok": False, **error_body(self.code, self.message)}


class BadRequest(YilianError):
    status = 400
    code = "bad_request"


class ValidationFailed(YilianError):
    status = 422
    code = "validation_error"


class Unauthorized(YilianError):
    status = 401
    code = "unauthorized"


class Forbidden(YilianError):
    status = 403
    code = "forbidden"


class NotFound(YilianError):
    status = 404
    code = "not_found"


class RoomClosed(Forbidden):
    """A video or teaching room whose case is no longer open (its owner's rule says so)."""

    code = "room_closed"


class Conflict(YilianError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class SlotTaken(Conflict):
    code = "slot_taken"


class PayloadTooLarge(YilianError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(YilianError):
    status = 415
    code = "unsupported_media_type"


class TooManyRequests(YilianError):
    status = 429
    code = "too_many_requests"


class InsufficientStorage(YilianError):
    """The disk (or the database's) is full: the request stored nothing."""

    status = 507
    code = "insufficient_storage"
