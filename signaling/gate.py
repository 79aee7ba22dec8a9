"""The namespace's view of the server: token auth, who may join which room, chat storage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.access import PARTICIPANT_ACTIVE, is_participant
from server.api import MAX_ID
from server.auth import authenticate_token
from server.db import Database
from server.models import Consultation, User
from signaling.errors import Forbidden, NotAvailable
from signaling.models import RtcChatMessage
from signaling.namespace import RtcUser
from signaling.rooms import RoomKind, RoomRef

#: Decides whether ``user`` may join the room of object ``object_id``; returns "hosts it".
AdmissionCheck = Callable[[AsyncSession, User, str], Awaitable[bool]]


async def consultation_admission(session: AsyncSession, user: User, object_id: str) -> bool:
    """Participants (requester and assigned expert) of an open consultation; the expert hosts."""
    known = object_id.isdigit() and int(object_id) <= MAX_ID
    consultation = await session.get(Consultation, int(object_id)) if known else None
    if consultation is None or not is_participant(user, consultation):
        # Same answer for "no such consultation" and "not yours": existence is not disclosed.
        raise Forbidden(f"you are not a participant of consultation {object_id}")
    if consultation.status not in PARTICIPANT_ACTIVE:
        raise Forbidden(
            f'consultation {object_id} is "{consultation.status}"; its room is closed',
            code="room_closed",
        )
    audit.record(
        session,
        user,
        "rtc_join",
        "consultation",
        consultation.id,
        patient_id=consultation.patient_id,
    )
    return consultation.expert_id == user.id


#: One admission rule per room kind. Teaching rooms get theirs from the teaching-session
#: subsystem (``register_admission("teaching", ...)``); until then they cannot be joined.
ADMISSION: dict[RoomKind, AdmissionCheck] = {"consultation": consultation_admission}


def register_admission(kind: RoomKind, check: AdmissionCheck) -> None:
    """Install the admission rule for a room kind."""
    ADMISSION[kind] = check


class DatabaseGate:
    """``signaling.namespace.Gate`` backed by the application's database."""

    def __init__(self, database: Callable[[], Database]) -> None:
        # A callable, because the database is opened by a cleanup context after create_app.
        self._database = database

    async def authenticate(self, token: str) -> RtcUser | None:
        user = await authenticate_token(self._database(), token)
        if user is None:
            return None
        return RtcUser(user.id, user.display_name, user.role)

    async def admission(self, user: RtcUser, room: RoomRef) -> bool:
        check = ADMISSION.get(room.kind)
        if check is None:
            raise NotAvailable(f"{room.kind} rooms are not available on this server")
        async with self._database().write() as session:
            row = await session.get(User, user.user_id)
            if row is None or not row.active:
                raise Forbidden("your account is not active")
            return await check(session, row, room.object_id)

    async def record_chat(
        self, user: RtcUser, room: RoomRef, peer_id: str, text: str, at: datetime
    ) -> None:
        consultation_id = int(room.object_id) if room.kind == "consultation" else None
        async with self._database().write() as session:
            session.add(
                RtcChatMessage(
                    room=room.name,
                    consultation_id=consultation_id,
                    user_id=user.user_id,
                    peer_id=peer_id,
                    text=text,
                    at=at,
                )
            )
