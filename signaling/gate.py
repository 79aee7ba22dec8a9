"""The namespace's view of the server: token auth, who may join and speak in which room, chat
storage."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core.auth import MAX_TOKEN_CHARS, live_tokens, token_digest, token_holder
from yilian.server.core.db import Database
from yilian.server.core.models import User
from yilian.signaling.errors import NotAvailable, Unauthorized
from yilian.signaling.models import RtcChatMessage
from yilian.signaling.namespace import UNAUTHORIZED, RtcUser
from yilian.signaling.rooms import RoomKind, RoomRef


class RoomRules(Protocol):
    """What the package that owns a kind of room decides about it; the app wires one per kind.

    Each method runs on a session of the signalling server's, inside its transaction.
    """

    async def admit(self, session: AsyncSession, user: User, object_id: str) -> bool:
        """Raise ``Forbidden`` unless ``user`` may join the room of ``object_id`` now (with
        code ``room_closed`` when the object is closed); return whether they host it."""

    async def may_speak(self, session: AsyncSession, user: User, object_id: str) -> None:
        """Raise as ``admit`` does unless ``user`` may still chat in that room (each line)."""

    async def still_open(self, session: AsyncSession, object_ids: Collection[str]) -> set[str]:
        """Which of these objects' rooms are still open; the others are closed at once."""


class DatabaseGate:
    """``signaling.namespace.Gate`` backed by the application's database."""

    def __init__(self, database: Callable[[], Database],
                 rules: Mapping[RoomKind, RoomRules]) -> None:
        # A callable, because the database is opened by a cleanup context after create_app.
        self._database = database
        # One set of rules per room kind, from the packages that own the rooms (the app wires
        # them); a kind without rules cannot be joined.
        self._rules = dict(rules)

    async def authenticate(self, token: str) -> RtcUser | None:
        if len(token) > MAX_TOKEN_CHARS:
            return None
        digest = token_digest(token)
        async with self._database().read() as session:
            found = await token_holder(session, digest)
        if found is None:
            return None
        user, expires_at = found
        return RtcUser(user.id, user.display_name, user.role, digest, expires_at.timestamp())

    async def live_tokens(self, digests: Collection[str]) -> set[str]:
        return await live_tokens(self._database(), digests)

    def _rules_for(self, room: RoomRef) -> RoomRules:
        rules = self._rules.get(room.kind)
        if rules is None:
            raise NotAvailable(f"{room.kind} rooms are not available on this server")
        return rules

    async def _holder(self, session: AsyncSession, user: RtcUser) -> User:
        """The socket's user, as long as its token is still good (checked in the caller's
        transaction, so a logout on another process is seen at once)."""
        found = await token_holder(session, user.token)
        if found is None:
            raise Unauthorized(UNAUTHORIZED)
        return found[0]

    async def admission(self, user: RtcUser, room: RoomRef) -> bool:
        rules = self._rules_for(room)
        async with self._database().write() as session:
            row = await self._holder(session, user)
            return await rules.admit(session, row, room.object_id)

    async def record_chat(
        self, user: RtcUser, room: RoomRef, peer_id: str, text: str, at: datetime
    ) -> None:
        rules = self._rules_for(room)
        consultation_id = int(room.object_id) if room.kind == "consultation" else None
        async with self._database().write() as session:
            row = await self._holder(session, user)
            await rules.may_speak(session, row, room.object_id)
            session.add(
                RtcChatMessage(
                    room=room.name,
                    consultation_id=consultation_id,
                    user_id=row.id,
                    peer_id=peer_id,
                    text=text,
                    at=at,
                )
            )

    async def open_rooms(self, rooms: Collection[RoomRef]) -> set[RoomRef]:
        by_kind: dict[RoomKind, list[RoomRef]] = defaultdict(list)
        for room in rooms:
            by_kind[room.kind].append(room)
        still: set[RoomRef] = set()
        async with self._database().read() as session:
            for kind, group in by_kind.items():
                rules = self._rules.get(kind)
                if rules is None:
                    continue  # nobody could have joined it; close it
                ids = await rules.still_open(session, [r.object_id for r in group])
                still.update(r for r in group if r.object_id in ids)
        return still
