"""The namespace's view of the server: token auth, who may join which room, chat storage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core.auth import authenticate_token
from yilian.server.core.db import Database
from yilian.server.core.models import User
from yilian.signaling.errors import Forbidden, NotAvailable
from yilian.signaling.models import RtcChatMessage
from yilian.signaling.namespace import RtcUser
from yilian.signaling.rooms import RoomKind, RoomRef

#: Decides whether ``user`` may join the room of object ``object_id``; returns "hosts it".
AdmissionCheck = Callable[[AsyncSession, User, str], Awaitable[bool]]


class DatabaseGate:
    """``signaling.namespace.Gate`` backed by the application's database."""

    def __init__(self, database: Callable[[], Database],
                 admission: Mapping[RoomKind, AdmissionCheck]) -> None:
        # A callable, because the database is opened by a cleanup context after create_app.
        self._database = database
        # One rule per room kind, from the packages that own the rooms (the app wires them);
        # a kind without one cannot be joined.
        self._admission = dict(admission)

    async def authenticate(self, token: str) -> RtcUser | None:
        user = await authenticate_token(self._database(), token)
        if user is None:
            return None
        return RtcUser(user.id, user.display_name, user.role)

    async def admission(self, user: RtcUser, room: RoomRef) -> bool:
        check = self._admission.get(room.kind)
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
