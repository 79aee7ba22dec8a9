"""The ``/rtc`` events of teaching rooms: signals to the relay (peer ``sfu``), ``subscribe``,
``unsubscribe``, ``layer`` and ``answered``.

``RtcNamespace`` registers :meth:`TeachingEvents.handlers` in its handler table and hands
signals addressed to ``sfu`` to :meth:`TeachingEvents.signal`; the relay itself
(``sfu.relay.BroadcastRelay``) emits ``broadcast``, ``viewers`` and ``layer``. The wire format
is in docs/signalling.md, "Teaching broadcast".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from yilian.signaling import protocol, rooms
from yilian.signaling.errors import Forbidden, NotAvailable, NotInRoom, RateLimited
from yilian.signaling.limits import ChatLimiter, RelayLimiter
from yilian.signaling.rooms import RoomRef
from yilian.signaling.sfu.relay import BroadcastRelay
from yilian.signaling.store import RoomStore

OK: dict[str, Any] = {"ok": True}


class SocketSession(Protocol):
    """What these events read of a socket's ``namespace.Session``."""

    @property
    def user(self) -> Any: ...

    @property
    def rooms(self) -> Mapping[str, str]: ...


class AnswerGate(Protocol):
    async def may_watch(self, user: Any, room: RoomRef) -> None: ...

    async def mark_answered(self, user: Any, room: RoomRef, message_id: int,
                            at: datetime) -> None: ...


class TeachingHost(Protocol):
    """What these events need of the namespace (``namespace.RtcNamespace``)."""

    @property
    def relay(self) -> BroadcastRelay | None: ...

    @property
    def store(self) -> RoomStore: ...

    @property
    def gate(self) -> AnswerGate: ...

    @property
    def sessions(self) -> Mapping[str, SocketSession]: ...

    async def emit(self, event: str, data: Any = None, *, room: str | None = None,
                   **kwargs: Any) -> Any: ...


class TeachingEvents:
    """Handlers of the teaching rooms' events, run by the namespace."""

    def __init__(self, host: TeachingHost, limiter: RelayLimiter | None = None) -> None:
        self._host = host
        self.limiter = limiter or RelayLimiter()

    def handlers(self) -> dict[str, Callable[[str, Any], Awaitable[dict[str, Any]]]]:
        """The client events these handle, for the namespace's handler table."""
        return {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "layer": self._layer,
            "answered": self._answered,
        }

    async def _teaching_peer(self, session: SocketSession,
                             room: RoomRef | None) -> tuple[RoomRef, str]:
        """The teaching room a relay event is about (named, or the socket's only one) and
        the socket's peer id there. Only an admitted peer may reach the relay: one waiting in
        the lobby has not been let in (as for chat)."""
        if room is None:
            joined = [n for n in session.rooms if n.startswith("teaching:")]
            if not joined:
                raise NotInRoom('you have joined no teaching room: "sfu" is not your peer')
            if len(joined) != 1:
                raise protocol.InvalidPayload(
                    'name the teaching room ("room") of a signal to "sfu"')
            room = rooms.parse_room(joined[0])
        own_id = session.rooms.get(room.name)
        state = await self._host.store.peek(room.name) if own_id is not None else None
        peer = state.peers.get(own_id) if state is not None and own_id is not None else None
        if own_id is None or peer is None or not peer.admitted:
            raise NotInRoom(f"you have not joined {room.name}")
        return room, own_id

    def _relay(self, room: RoomRef) -> BroadcastRelay:
        relay = self._host.relay
        if relay is None or room.kind != "teaching":
            raise NotAvailable("the broadcast relay is not available for this room")
        return relay

    @staticmethod
    def _limit(bucket: ChatLimiter, session: SocketSession, what: str) -> None:
        """Before any lookup: a flood is refused without touching the store or the relay."""
        wait = bucket.take(session.user.user_id)
        if wait:
            raise RateLimited(f"too many {what}; the next is allowed in {wait:.1f} s")

    async def signal(self, sid: str, session: SocketSession,
                     request: protocol.SignalRequest) -> dict[str, Any]:
        """A ``signal`` to ``sfu``: the presenter's offer and candidates, a viewer's answer
        and candidates."""
        if self._host.relay is None:
            raise NotAvailable("the broadcast relay is not available for this room")
        self._limit(self.limiter.signals, session, "signals to the relay")
        room, own_id = await self._teaching_peer(session, request.room)
        relay = self._relay(room)
        await relay.signal(session.user, sid, room, own_id, request.payload)
        return OK

    async def _subscribe(self, sid: str, data: Any) -> dict[str, Any]:
        room, layer = protocol.parse_subscribe(data)
        session = self._host.sessions[sid]
        self._limit(self.limiter.subscribe, session, "subscriptions")
        own = (await self._teaching_peer(session, room))[1]
        relay = self._relay(room)
        # Joining checked who may watch; invitations can change while they sit in the room.
        await self._host.gate.may_watch(session.user, room)
        return await relay.subscribe(room, own, layer)

    async def _unsubscribe(self, sid: str, data: Any) -> dict[str, Any]:
        room = protocol.parse_room_only(data, "unsubscribe")
        own = (await self._teaching_peer(self._host.sessions[sid], room))[1]
        await self._relay(room).unsubscribe(room, own)
        return OK

    async def _layer(self, sid: str, data: Any) -> dict[str, Any]:
        room, layer = protocol.parse_layer(data)
        session = self._host.sessions[sid]
        self._limit(self.limiter.signals, session, "layer changes")
        own = (await self._teaching_peer(session, room))[1]
        return await self._relay(room).set_layer(room, own, layer)

    async def _answered(self, sid: str, data: Any) -> dict[str, Any]:
        room, message_id = protocol.parse_answered(data)
        session = self._host.sessions[sid]
        own = (await self._teaching_peer(session, room))[1]
        if room.kind != "teaching":
            raise NotAvailable("questions are marked answered in teaching rooms")
        state = await self._host.store.peek(room.name)
        peer = state.peers.get(own) if state is not None else None
        if peer is None or not peer.host:
            raise Forbidden(f"only the presenter of {room.name} marks questions answered")
        at = datetime.now(UTC)
        await self._host.gate.mark_answered(session.user, room, message_id, at)
        await self._host.emit("answered", {"room": room.name, "id": message_id,
                                           "by": session.user.user_id, "at": at.isoformat()},
                              room=room.name)
        return OK
