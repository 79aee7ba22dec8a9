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
from yilian.signaling.errors import NotAvailable, NotFound, Unauthorized
from yilian.signaling.models import RtcChatMessage
from yilian.signaling.rooms import RoomKind, RoomRef
from yilian.signaling.session import UNAUTHORIZED, RtcUser
from yilian.signaling.sfu.ports import BroadcastRules, RecordingTarget


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

    async def left(self, session: AsyncSession, user: User, object_id: str) -> None:
        """``user``'s last peer left the room for good (deliberate leave, grace period over,
        room shut, socket ended)."""


class DatabaseGate:
    """``signaling.session.Gate`` backed by the application's database."""

    def __init__(self, database: Callable[[], Database],
                 rules: Mapping[RoomKind, RoomRules],
                 broadcast: BroadcastRules | None = None) -> None:
        # A callable, because the database is opened by a cleanup context after create_app.
        self._database = database
        # One set of rules per room kind, from the packages that own the rooms (the app wires
        # them); a kind without rules cannot be joined.
        self._rules = dict(rules)
        # Teaching sessions' rules for the broadcast relay; without them nobody publishes.
        self.broadcast = broadcast

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
    ) -> int:
        rules = self._rules_for(room)
        consultation_id = int(room.object_id) if room.kind == "consultation" else None
        # The teaching session's key, for its questions (only named for teaching rooms).
        teaching = {"teaching_session_id": int(room.object_id)} if room.kind == "teaching" else {}
        async with self._database().write() as session:
            row = await self._holder(session, user)
            await rules.may_speak(session, row, room.object_id)
            message = RtcChatMessage(
                room=room.name,
                consultation_id=consultation_id,
                **teaching,
                user_id=row.id,
                peer_id=peer_id,
                text=text,
                at=at,
            )
            session.add(message)
            await session.flush()  # its id goes out with the line (``answered`` names it)
            return message.id

    async def may_watch(self, user: RtcUser, room: RoomRef) -> None:
        """Raise unless ``user`` may still watch ``room`` now: checked again at each
        ``subscribe``, since invitations (or the user's institution) can change while they
        sit in the room. The rules' ``may_speak`` is that same check (the room's audience)."""
        rules = self._rules_for(room)
        async with self._database().read() as session:
            row = await self._holder(session, user)
            await rules.may_speak(session, row, room.object_id)

    async def mark_answered(self, user: RtcUser, room: RoomRef, message_id: int,
                            at: datetime) -> None:
        """The presenter marks a question of this teaching room answered (audited as a chat
        action of the room's rules: only a host may, checked by the caller in the room)."""
        rules = self._rules_for(room)
        async with self._database().write() as session:
            row = await self._holder(session, user)
            await rules.may_speak(session, row, room.object_id)
            message = await session.get(RtcChatMessage, message_id)
            if message is None or message.room != room.name:
                raise NotFound(f"no question {message_id} in {room.name}")
            if message.answered_at is None:
                message.answered_at = at
                message.answered_by_id = row.id

    async def left(self, user_id: int | str, room: RoomRef) -> None:
        """Tell the room's rules that ``user_id`` left it for good."""
        rules = self._rules.get(room.kind)
        if rules is None:
            return
        async with self._database().write() as session:
            row = await session.get(User, user_id)
            if row is not None:
                await rules.left(session, row, room.object_id)

    def _broadcast_rules(self) -> BroadcastRules:
        if self.broadcast is None:
            raise NotAvailable("the broadcast relay is not available on this server")
        return self.broadcast

    async def may_publish(self, user: RtcUser, room: RoomRef) -> bool:
        """Raise unless ``user`` may present in ``room`` now; return whether to record."""
        rules = self._broadcast_rules()
        if room.kind != "teaching":
            raise NotAvailable("only teaching rooms have a broadcast relay")
        async with self._database().write() as session:
            row = await self._holder(session, user)
            return await rules.may_publish(session, row, room.object_id)

    async def recording_started(self, room: RoomRef, container: str,
                                started_at: datetime) -> RecordingTarget:
        async with self._database().write() as session:
            return await self._broadcast_rules().recording_started(
                session, room.object_id, container, started_at)

    async def recording_finished(self, recording_id: int, duration_s: float, size: int,
                                 ended_at: datetime, ok: bool) -> None:
        async with self._database().write() as session:
            await self._broadcast_rules().recording_finished(
                session, recording_id, duration_s, size, ended_at, ok)

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
