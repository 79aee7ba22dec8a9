"""A socket's session on ``/rtc`` and ``/notify``: the user it authenticated as, what the
namespaces need of the rest of the server (``Gate``), and how a client event is answered
(``answer_event``: an ack for everything, errors included)."""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from yilian.server.core.errors import YilianError
from yilian.signaling import protocol
from yilian.signaling.errors import SignalingError, Unauthorized, UnknownEvent
from yilian.signaling.rooms import RoomRef

logger = logging.getLogger(__name__)

UNAUTHORIZED = "the token was revoked or has expired, or the account is not active; log in again"


@dataclass(frozen=True)
class RtcUser:
    """The authenticated user behind a socket, and the token it authenticated with."""

    user_id: int | str
    display_name: str
    role: str
    token: str = ""  # the token's SHA-256 (how revocations name it)
    expires_at: float = math.inf  # when the token expires (Unix time)


class Gate(Protocol):
    """What the namespace needs from the rest of the server (auth, access, chat storage)."""

    async def authenticate(self, token: str) -> RtcUser | None:
        """The user for a bearer token, or ``None`` when it is bad, revoked or expired."""

    async def live_tokens(self, digests: Collection[str]) -> set[str]:
        """Which of these token digests are still good (not revoked or expired, user active)."""

    async def admission(self, user: RtcUser, room: RoomRef) -> bool:
        """Raise ``Unauthorized`` unless the user's token is still good and ``Forbidden``
        unless they may join ``room``; return whether they host it."""

    async def record_chat(
        self, user: RtcUser, room: RoomRef, peer_id: str, text: str, at: datetime
    ) -> int:
        """Keep a chat line with the consultation or teaching session and return its id;
        raise as ``admission`` does unless the user may still speak there."""

    async def may_watch(self, user: RtcUser, room: RoomRef) -> None:
        """Raise as ``admission`` does unless ``user`` may still watch ``room`` (``subscribe``)."""

    async def mark_answered(self, user: RtcUser, room: RoomRef, message_id: int,
                            at: datetime) -> None:
        """Mark a question (chat line) of ``room`` answered; ``NotFound`` if it is not one."""

    async def left(self, user_id: int | str, room: RoomRef) -> None:
        """``user_id``'s last peer left ``room`` for good."""

    async def open_rooms(self, rooms: Collection[RoomRef]) -> set[RoomRef]:
        """Which of these rooms are still open (their consultation or session is)."""


@dataclass
class Session:
    """Per-socket state, local to the process that holds the socket."""

    user: RtcUser
    rooms: dict[str, str] = field(default_factory=dict)  # room name -> own peer id
    ended: bool = False  # the token is no longer good: events refused, disconnect under way

    def live(self, now: float | None = None) -> bool:
        """Whether the socket's token is still good (not ended, not expired)."""
        return not self.ended and (time.time() if now is None else now) < self.user.expires_at


EventHandler = Callable[[str, Any], Awaitable[Any]]


async def answer_event(handlers: dict[str, EventHandler], sid: str, event: str,
                       args: tuple[Any, ...], session: Session | None, *,
                       missing: SignalingError, end_session: Callable[[str], None],
                       label: str) -> Any:
    """Run a client event's handler and return its ack: ``missing`` when the socket has no
    session, ``unauthorized`` (ending the session) once its token is no longer good, an error
    ack for an unknown event, a second argument or a failed handler — never an exception."""
    try:
        if session is None:
            raise missing
        if not session.live():
            raise Unauthorized(UNAUTHORIZED)  # the session is ended below
        handler = handlers.get(event)
        if handler is None:
            raise UnknownEvent(f'unknown event "{str(event)[:80]}"')
        if len(args) > 2:
            raise protocol.InvalidPayload(f'"{event}" takes a single argument')
        return await handler(sid, args[1] if len(args) > 1 else None)
    except SignalingError as exc:
        if isinstance(exc, Unauthorized):
            end_session(sid)
        return exc.ack()
    except Exception as exc:
        # The traceback's frames, not the exception's text: a database error quotes the
        # statement's parameters, which for a chat line are patient data.
        logger.error("%s event %s from %s failed with %s:\n%s", label, str(event)[:80], sid,
                     type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
        return YilianError("the server could not handle this event",
                           code="internal_error").ack()
