"""The ``/rtc`` socket.io namespace: auth at connect, rooms, lobby, signal and chat relay.

The teaching rooms' events (signals to ``sfu``, ``subscribe``, ``layer``, ``answered``, ...)
are handled by ``teaching.TeachingEvents``, registered in this namespace's handler table."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import socketio

from yilian.server.core.errors import error_body
from yilian.server.core.tasks import TaskSet
from yilian.signaling import protocol, rooms, wirejson
from yilian.signaling.errors import (
    NotAvailable,
    NotInRoom,
    RateLimited,
    RoomClosed,
    Unauthorized,
    UnknownPeer,
)
from yilian.signaling.limits import ChatLimiter
from yilian.signaling.rooms import Identity, Peer
from yilian.signaling.session import UNAUTHORIZED, Gate, Session, answer_event
from yilian.signaling.sfu.relay import BroadcastRelay
from yilian.signaling.store import RoomStore
from yilian.signaling.teaching import TeachingEvents

logger = logging.getLogger(__name__)

NAMESPACE = "/rtc"
OK: dict[str, Any] = {"ok": True}
# Reasons after which the client meant to go: no grace period, the others see peer-left at once.
_DELIBERATE = {
    socketio.AsyncServer.reason.CLIENT_DISCONNECT,
    socketio.AsyncServer.reason.SERVER_DISCONNECT,
}


@dataclass(frozen=True)
class ChatPolicy:
    """Limits on chat lines (settings ``rtc_chat_*``)."""

    max_chars: int = protocol.MAX_CHAT_CHARS
    burst: int = 10
    per_second: float = 1.0


def peer_channel(peer_id: str) -> str:
    """The socket.io room that reaches exactly one peer, on whichever process holds it."""
    return f"peer:{peer_id}"


def host_channel(room: str) -> str:
    return f"hosts:{room}"


class RtcNamespace(socketio.AsyncNamespace):
    """Handlers for ``/rtc``; every event answers with an ack, errors included."""

    def __init__(self, gate: Gate, store: RoomStore, *, grace_seconds: float,
                 chat: ChatPolicy | None = None) -> None:
        super().__init__(NAMESPACE)
        self.gate = gate
        # The broadcast relay (peer "sfu" of teaching rooms); None: "sfu" is not available.
        self.relay: BroadcastRelay | None = None
        self.store = store
        self.grace_seconds = grace_seconds
        self.chat = chat or ChatPolicy()
        self.chat_limiter = ChatLimiter(self.chat.burst, self.chat.per_second)
        self.sessions: dict[str, Session] = {}
        self._tasks = TaskSet()
        self._handlers: dict[str, Callable[[str, Any], Awaitable[dict[str, Any]]]] = {
            "join": self._join,
            "leave": self._leave,
            "signal": self._signal,
            "chat": self._chat,
            "lobby": self._lobby,
            "admit": self._admit,
            "refuse": self._refuse,
        }
        # subscribe, unsubscribe, layer, answered; and signals to "sfu" (see ``_signal``)
        self.teaching = TeachingEvents(self)
        self._handlers.update(self.teaching.handlers())

    def use_relay(self, relay: BroadcastRelay) -> None:
        """Serve the peer ``sfu`` of teaching rooms with ``relay``."""
        self.relay = relay
        relay.attach(self, self._send_local)

    @property
    def events(self) -> frozenset[str]:
        """The names of the events clients may send."""
        return frozenset(self._handlers)

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Route every event, so unknown ones and crashes still get an error ack."""
        sid = args[0]
        # A client may also *send* events named "connect"/"disconnect"; only the server's own
        # lifecycle calls are real: a connect before the session exists, a disconnect once
        # the manager no longer counts the socket as connected.
        if event == "connect" and sid not in self.sessions:
            return await self._connect(*args)
        if event == "disconnect" and not self.server.manager.is_connected(sid, NAMESPACE):
            return await self._disconnect(sid, args[1] if len(args) > 1 else "")
        return await answer_event(self._handlers, sid, event, args, self.sessions.get(sid),
                                  missing=NotInRoom("not connected"),
                                  end_session=self.end_session, label="rtc")

    # connection lifecycle

    async def _connect(self, sid: str, environ: Any, auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        user = await self.gate.authenticate(token) if isinstance(token, str) and token else None
        if user is None:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        self.sessions[sid] = Session(user)

    def end_session(self, sid: str) -> None:
        """The socket's token is no longer good (logout, expiry, deactivated user): refuse its
        events from now on, tell it ``session-ended`` and disconnect it."""
        session = self.sessions.get(sid)
        if session is None or session.ended:
            return
        session.ended = True
        self._spawn(self._kick(sid))

    async def _kick(self, sid: str) -> None:
        await self._send_local(sid, "session-ended", error_body("unauthorized", UNAUTHORIZED))
        await self.server.disconnect(sid, namespace=NAMESPACE)

    def token_revoked(self, digest: str) -> None:
        """A token was revoked through this process: end every socket it opened, at once."""
        for sid, session in list(self.sessions.items()):
            if session.user.token == digest:
                self.end_session(sid)

    async def shut_room(self, room_name: str) -> None:
        """The room's consultation (or session) closed: this process's sockets in it get
        ``room-closed`` and are taken out, peers held for dropped sockets are forgotten. The
        other processes do the same for theirs when their own check sees it."""
        local = [sid for sid, s in self.sessions.items() if room_name in s.rooms]
        async with self.store.room(room_name) as state:
            holder = state.sfu_host  # before the eviction: the store forgets an empty room
            evicted = rooms.evict(state, local)
        if self.relay is not None:
            await self.relay.close_room(room_name)
            if holder is not None and await self.store.peek(room_name) is None:
                # Nobody is left to tell the holder (the presenter resumed onto another
                # process): its broadcast would linger, so close it there.
                await self.relay.close_elsewhere(room_name, holder)
        await self._left_for_good(room_name, evicted)
        closed = RoomClosed(f"{room_name} is closed: its consultation is no longer open")
        for sid in local:
            session = self.sessions.get(sid)
            peer_id = session.rooms.pop(room_name, None) if session is not None else None
            if peer_id is None:
                continue
            await self._send_local(sid, "room-closed", {"room": room_name, **closed.to_json()})
            for channel in (room_name, host_channel(room_name), peer_channel(peer_id)):
                await self.leave_room(sid, channel)

    async def _disconnect(self, sid: str, reason: str) -> None:
        logger.debug("rtc socket %s disconnected: %s", sid, reason)
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        for room_name in list(session.rooms):
            if reason in _DELIBERATE:
                await self._remove(sid, room_name)
            else:
                await self._suspend(sid, room_name)

    async def _suspend(self, sid: str, room_name: str) -> None:
        until = time.time() + self.grace_seconds
        async with self.store.room(room_name) as state:
            peer = rooms.suspend(state, sid, until)
        if peer is not None:
            logger.info(
                "peer %s dropped from %s; held for %.0f s",
                peer.peer_id,
                room_name,
                self.grace_seconds,
            )
            self._spawn(self._expire_later(room_name, self.grace_seconds))

    async def _expire_later(self, room_name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.sweep(room_name)

    async def sweep(self, room_name: str) -> None:
        """Drop peers of ``room_name`` whose grace period is over and tell the room."""
        async with self.store.room(room_name) as state:
            gone = rooms.expire_suspended(state, time.time())
        await self._announce_gone(room_name, gone)

    async def _announce_gone(self, room_name: str, gone: list[Peer]) -> None:
        if gone:
            await self._left_for_good(room_name, gone)
        for peer in gone:
            if peer.admitted:
                await self.emit("peer-left", {"peer_id": peer.peer_id}, room=room_name)
            else:
                await self.emit(
                    "lobby-left",
                    {"room": room_name, "peer_id": peer.peer_id},
                    room=host_channel(room_name),
                )

    async def _left_for_good(self, room_name: str, gone: list[Peer]) -> None:
        """Peers left for good: the relay drops them (the presenter's leaving ends the
        broadcast) and the room's rules hear of each user who has no peer left there."""
        if not gone:
            return
        state = await self.store.peek(room_name)
        if self.relay is not None:
            for peer in gone:
                await self.relay.peer_gone(room_name, peer.peer_id, state)
        remaining = {p.user_id for p in state.peers.values()} if state is not None else set()
        room = rooms.parse_room(room_name)
        for user_id in {p.user_id for p in gone} - remaining:
            try:
                await self.gate.left(user_id, room)
            except Exception:  # a disconnect never fails; the rules' sweep closes what is left
                logger.exception("closing the stay of user %s in %s failed", user_id, room_name)

    async def _remove(self, sid: str, room_name: str) -> Peer | None:
        async with self.store.room(room_name) as state:
            peer = rooms.leave(state, sid)
        session = self.sessions.get(sid)
        if session is not None:
            session.rooms.pop(room_name, None)
            for channel in (room_name, host_channel(room_name)):
                await self.leave_room(sid, channel)
            if peer is not None:
                await self.leave_room(sid, peer_channel(peer.peer_id))
        if peer is not None:
            await self._announce_gone(room_name, [peer])
        return peer

    # events

    async def _join(self, sid: str, data: Any) -> dict[str, Any]:
        request = protocol.parse_join(data)
        session = self.sessions[sid]
        room = request.room
        if room.name in session.rooms:
            raise protocol.InvalidPayload(f"this connection has already joined {room.name}")
        user = session.user
        host = await self.gate.admission(user, room)
        if session.ended:  # the token died while the admission was checked
            raise Unauthorized(UNAUTHORIZED)
        who = Identity(user.user_id, user.display_name, user.role, host)
        try:
            async with self.store.room(room.name) as state:
                outcome = rooms.join(state, room.capacity, who, sid, time.time(),
                                     request.resume, room.per_user)
                waiting = [p.public() for p in state.waiting()] if host else []
                live = state.live
        except Exception:
            await self._admission_undone(user.user_id, room)
            raise
        if sid not in self.sessions:  # the socket went away while we waited for the lock
            await self._suspend(sid, room.name)
            return OK
        await self._announce_gone(room.name, outcome.expired)
        peer = outcome.peer
        session.rooms[room.name] = peer.peer_id
        await self.enter_room(sid, peer_channel(peer.peer_id))
        if host:
            await self.enter_room(sid, host_channel(room.name))
        if outcome.waiting:
            if not outcome.resumed:
                await self.emit(
                    "lobby-waiting",
                    {"room": room.name, **peer.public()},
                    room=host_channel(room.name),
                )
            return {
                "ok": True,
                "peer_id": peer.peer_id,
                "waiting": True,
                "peers": [],
                "resumed": outcome.resumed,
            }
        await self.enter_room(sid, room.name)
        if not outcome.resumed:
            await self.emit(
                "peer-joined", {**peer.public(), "polite": False}, room=room.name, skip_sid=sid
            )
        ack: dict[str, Any] = {
            "ok": True,
            "peer_id": peer.peer_id,
            "peers": [p.public_for(peer) for p in outcome.peers],
            "resumed": outcome.resumed,
            "host": host,
        }
        if host:
            ack["lobby"] = waiting
        if room.kind == "teaching":
            ack["live"] = live
        return ack

    async def _admission_undone(self, user_id: int | str, room: rooms.RoomRef) -> None:
        """The admission passed (a teaching room opened an attendance row) but the join did
        not (room full, too many tabs): unless the user holds another peer there, the rules
        hear that they left, so no stay is left open."""
        state = await self.store.peek(room.name)
        if state is not None and any(p.user_id == user_id for p in state.peers.values()):
            return
        try:
            await self.gate.left(user_id, room)
        except Exception:  # the join's own error is the answer; the rules' sweep closes it
            logger.exception("closing the stay of user %s in %s failed", user_id, room.name)

    async def _leave(self, sid: str, data: Any) -> dict[str, Any]:
        room = protocol.parse_room_only(data, "leave")
        if room.name not in self.sessions[sid].rooms:
            raise NotInRoom(f"you have not joined {room.name}")
        await self._remove(sid, room.name)
        return OK

    async def _signal(self, sid: str, data: Any) -> dict[str, Any]:
        request = protocol.parse_signal(data)
        session = self.sessions[sid]
        if request.to == rooms.SFU_PEER_ID:
            return await self.teaching.signal(sid, session, request)
        for room_name, own_id in session.rooms.items():
            state = await self.store.peek(room_name)
            if state is None:
                continue
            target = state.peers.get(request.to)
            sender = state.peers.get(own_id)
            if target is None or not target.admitted or sender is None or not sender.admitted:
                continue
            message = {"from": own_id, **request.payload}
            if target.sid is None or not await self._send_local(target.sid, "signal", message):
                # On another process (the manager carries it), or within its grace period
                # (dropped: a resumed peer renegotiates anyway).
                await self.emit("signal", message, room=peer_channel(request.to))
            return OK
        if request.to == rooms.SFU_PEER_ID:
            raise NotAvailable("the broadcast relay is not available for this room")
        raise UnknownPeer(f'no peer "{request.to}" shares a room with you')

    async def _send_local(self, sid: str, event: str, data: Any) -> bool:
        """Send one event to a socket of this process; False when it is not held here.

        Signals are the hot path (every SDP and ICE candidate): writing the socket.io frame
        (``2/rtc,["signal",{...}]``) straight to engine.io skips the manager's room lookup
        and python-socketio's recursive binary scan, about half of the relay's cost.
        """
        manager = self.server.manager
        eio_sid = manager.eio_sid_from_sid(sid, NAMESPACE)
        if eio_sid is None or not manager.is_connected(sid, NAMESPACE):
            return False
        frame = f"2{NAMESPACE}," + wirejson.dumps([event, data])
        await self.server.eio.send(eio_sid, frame)
        return True

    async def _chat(self, sid: str, data: Any) -> dict[str, Any]:
        room, text = protocol.parse_chat(data, self.chat.max_chars)
        session = self.sessions[sid]
        # Before any lookup: a flood is refused without touching the room store or database.
        wait = self.chat_limiter.take(session.user.user_id)
        if wait:
            raise RateLimited(f"too many chat messages; the next is allowed in {wait:.1f} s")
        own_id = session.rooms.get(room.name)
        state = await self.store.peek(room.name)
        if (
            own_id is None
            or state is None
            or own_id not in state.peers
            or not state.peers[own_id].admitted
        ):
            raise NotInRoom(f"you have not joined {room.name}")
        at = datetime.now(UTC)
        try:
            message_id = await self.gate.record_chat(session.user, room, own_id, text, at)
        except RoomClosed:  # seen here first: close it for everyone now
            self._spawn(self.shut_room(room.name))
            raise
        message = {
            "id": message_id,
            "room": room.name,
            "from": own_id,
            "user_id": session.user.user_id,
            "text": text,
            "at": at.isoformat(),
        }
        await self.emit("chat", message, room=room.name)
        return {"ok": True, "at": message["at"], "id": message_id}

    async def _lobby(self, sid: str, data: Any) -> dict[str, Any]:
        room, enabled = protocol.parse_lobby(data)
        async with self.store.room(room.name) as state:
            admitted = rooms.set_lobby(state, room.capacity, sid, enabled)
            views = [
                (p, [m.public_for(p) for m in state.members() if m.peer_id != p.peer_id])
                for p in admitted
            ]
        for peer, peers in views:
            await self._let_in(room.name, peer, peers)
        return {"ok": True, "lobby": enabled, "admitted": [p.peer_id for p in admitted]}

    async def _admit(self, sid: str, data: Any) -> dict[str, Any]:
        room, peer_id = protocol.parse_room_peer(data, "admit")
        async with self.store.room(room.name) as state:
            peer, others = rooms.admit(state, room.capacity, sid, peer_id)
            peers = [m.public_for(peer) for m in others]
        await self._let_in(room.name, peer, peers)
        return OK

    async def _let_in(self, room_name: str, peer: Peer, peers: list[dict[str, Any]]) -> None:
        channel = peer_channel(peer.peer_id)
        # enter_room by room name reaches the waiting socket on any process via the manager.
        if peer.sid is not None:
            await self.enter_room(peer.sid, room_name)
        await self.emit(
            "peer-joined", {**peer.public(), "polite": False}, room=room_name, skip_sid=peer.sid
        )
        await self.emit(
            "admitted", {"room": room_name, "peer_id": peer.peer_id, "peers": peers}, room=channel
        )

    async def _refuse(self, sid: str, data: Any) -> dict[str, Any]:
        room, peer_id = protocol.parse_room_peer(data, "refuse")
        async with self.store.room(room.name) as state:
            peer = rooms.refuse(state, sid, peer_id)
        await self.emit(
            "refused", {"room": room.name, "peer_id": peer.peer_id}, room=peer_channel(peer.peer_id)
        )
        if peer.sid is not None:
            session = self.sessions.get(peer.sid)
            if session is not None:
                session.rooms.pop(room.name, None)
            await self.leave_room(peer.sid, peer_channel(peer.peer_id))
        return OK

    # background tasks

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(coro)

    async def close(self) -> None:
        """Close the broadcasts, cancel grace timers; idempotent."""
        if self.relay is not None:
            await self.relay.close()
        await self._tasks.close()
        self.sessions.clear()
