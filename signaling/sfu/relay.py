"""The ``/rtc`` namespace's broadcast relay: the peer ``sfu`` of teaching rooms.

The process where the presenter publishes holds the room's :class:`Broadcast` and writes its
own id into the room state (``RoomState.sfu_host``). A viewer's ``subscribe``, its signals to
``sfu`` and its ``layer`` choice run there: directly when its socket is on the same process,
otherwise as a request through Redis (:class:`signaling.sfu.link.RelayLink`). What the
broadcast sends a viewer (its offer, ``layer`` moves) goes to the viewer's peer channel, which
the socket.io manager delivers on whichever process holds the socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Protocol

from aiortc import RTCSessionDescription

from yilian.server.core.errors import YilianError
from yilian.server.core.tasks import TaskSet
from yilian.signaling.errors import InvalidPayload, NotAvailable, NotInRoom, UnknownPeer
from yilian.signaling.rooms import SFU_PEER_ID, RoomRef, RoomState
from yilian.signaling.sfu.broadcast import Broadcast, BroadcastConfig, NotLive
from yilian.signaling.sfu.ports import RecordingTarget
from yilian.signaling.sfu.record import Recorder
from yilian.signaling.sfu.recording import Recorder as RecorderLike

logger = logging.getLogger(__name__)

#: Least time between two ``viewers`` events to a presenter.
VIEWERS_EVERY = 1.0


class RelayGate(Protocol):
    """What the relay asks the database (``signaling.gate.DatabaseGate``)."""

    async def may_publish(self, user: Any, room: RoomRef) -> bool: ...

    async def recording_started(self, room: RoomRef, container: str,
                                started_at: datetime) -> RecordingTarget: ...

    async def recording_finished(self, recording_id: int, duration_s: float, size: int,
                                 ended_at: datetime, ok: bool) -> None: ...


class RelayHost(Protocol):
    """What the relay needs of the namespace."""

    store: Any

    async def emit(self, event: str, data: Any = None, *, room: str | None = None,
                   **kwargs: Any) -> None: ...


Emit = Callable[[str, Any, str], Awaitable[None]]


class _RecordingRow:
    """A recorder whose file has a row: closing it completes the row (``recording_finished``)."""

    def __init__(self, inner: Any, target: RecordingTarget, gate: RelayGate) -> None:
        self._inner = inner
        self._target = target
        self._gate = gate
        self.container: str = inner.container

    @property
    def want_keyframe(self) -> Any:
        return self._inner.want_keyframe

    @want_keyframe.setter
    def want_keyframe(self, callback: Any) -> None:
        self._inner.want_keyframe = callback

    def write_video(self, packet: Any) -> None:
        self._inner.write_video(packet)

    def write_audio(self, packet: Any) -> None:
        self._inner.write_audio(packet)

    async def close(self) -> Any:
        result: Any = None
        ok, duration, size = False, 0.0, 0
        try:
            result = await self._inner.close()
            ok = bool(result.ok)
            duration, size = float(result.duration_s), int(result.size)
        finally:
            await self._gate.recording_finished(self._target.recording_id, duration, size,
                                                datetime.now(UTC), ok)
        return result


def _container(video_mime: str) -> str:
    return "webm" if video_mime.lower() == "video/vp8" else "mkv"


class BroadcastRelay:
    """Teaching broadcasts of this process, and the ``/rtc`` events that reach them."""

    def __init__(self, gate: RelayGate, config: BroadcastConfig, host_id: str) -> None:
        self.gate = gate
        self.config = config
        self.host_id = host_id
        self.broadcasts: dict[str, Broadcast] = {}
        self._record: dict[str, bool] = {}
        self._viewers_sent: dict[str, float] = {}
        self._viewers_pending: set[str] = set()
        self._tasks = TaskSet()
        self._host: RelayHost | None = None
        self._send_local: Callable[[str, str, Any], Awaitable[bool]] | None = None
        #: ``remote(host_id, op, args)``: run ``op`` on another process (set with Redis).
        self.remote: Callable[[str, str, dict[str, Any]], Awaitable[Any]] | None = None
        self._closed = False

    def attach(self, host: RelayHost,
               send_local: Callable[[str, str, Any], Awaitable[bool]]) -> None:
        self._host = host
        self._send_local = send_local

    @property
    def host(self) -> RelayHost:
        assert self._host is not None, "attach() the namespace first"
        return self._host

    # the presenter

    async def publish(self, user: Any, sid: str, room: RoomRef, peer_id: str,
                      description: dict[str, Any]) -> None:
        """The presenter's offer: check the rules, take the room's broadcast over, answer."""
        if description["type"] != "offer":
            raise InvalidPayload("the presenter sends the relay an offer")
        record = await self.gate.may_publish(user, room)
        async with self.host.store.room(room.name) as state:
            state.member_by_sid(sid)
            previous, replaced = state.sfu_host, state.presenter
            state.sfu_host = self.host_id
            state.presenter = peer_id
            if previous is not None and previous != self.host_id:
                state.live = False  # until this process's broadcast has media
        if replaced is not None and replaced != peer_id:
            # Another device of the presenter took over: that page stops (and offers to take
            # over again) instead of republishing when its connection fails, in a loop.
            await self._to_peer(replaced, None, "superseded", {"room": room.name})
        if previous is not None and previous != self.host_id:
            await self._close_at(previous, room.name)
        self._record[room.name] = record
        broadcast = self.broadcasts.get(room.name)
        if broadcast is None or broadcast.closed:
            broadcast = self._new(room)
        answer = await broadcast.publish(RTCSessionDescription(description["sdp"], "offer"))
        await self._to_peer(peer_id, sid, "signal", {
            "from": SFU_PEER_ID, "room": room.name,
            "description": {"type": answer.type, "sdp": answer.sdp}})

    def _new(self, room: RoomRef) -> Broadcast:
        name = room.name

        async def recorder(video_mime: str, audio_mime: str | None) -> RecorderLike | None:
            if not self._record.get(name):
                return None
            target = await self.gate.recording_started(room, _container(video_mime),
                                                       datetime.now(UTC))
            try:
                inner = Recorder(target.path, video_mime, audio_mime)
            except ValueError:  # a codec it cannot record: the row says so
                await self.gate.recording_finished(target.recording_id, 0.0, 0,
                                                   datetime.now(UTC), False)
                raise
            return _RecordingRow(inner, target, self.gate)

        broadcast = Broadcast(name, self.config, recorder=recorder)
        broadcast.on_live = lambda live: self._spawn(self._live_changed(name, live))
        broadcast.on_layer_change = lambda viewer, layer, reason: self._spawn(
            self.host.emit("layer", {"room": name, "layer": layer, "reason": reason},
                           room=_peer_channel(viewer)))
        broadcast.on_viewers = lambda: self._viewers_changed(name)
        self.broadcasts[name] = broadcast
        return broadcast

    async def _live_changed(self, name: str, live: bool) -> None:
        async with self.host.store.room(name) as state:
            if state.sfu_host == self.host_id:
                state.live = live
        await self.host.emit("broadcast", {"room": name, "live": live}, room=name)

    def _viewers_changed(self, name: str) -> None:
        """Tell the presenter how many watch, at most once a second."""
        if name in self._viewers_pending:
            return
        self._viewers_pending.add(name)
        wait = self._viewers_sent.get(name, 0.0) + VIEWERS_EVERY - time.monotonic()
        self._spawn(self._send_viewers(name, max(0.0, wait)))

    async def _send_viewers(self, name: str, wait: float) -> None:
        await asyncio.sleep(wait)
        self._viewers_pending.discard(name)
        broadcast = self.broadcasts.get(name)
        if broadcast is None:
            return
        self._viewers_sent[name] = time.monotonic()
        stats = broadcast.stats()
        await self.host.emit("viewers", {"room": name, "count": stats["viewers"],
                                         "high": stats["high"], "low": stats["low"]},
                             room=_host_channel(name))

    # signals to "sfu"

    async def signal(self, user: Any, sid: str, room: RoomRef, peer_id: str,
                     payload: dict[str, Any]) -> None:
        """A ``signal`` to ``sfu`` from the presenter (offer, candidates) or a viewer (answer,
        candidates)."""
        state = await self._state(room)
        description = payload.get("description")
        if description is not None and description["type"] == "offer":
            await self.publish(user, sid, room, peer_id, description)
            return
        if description is not None and description["type"] != "answer":
            raise InvalidPayload('the relay takes an "offer" (presenter) or an "answer" (viewer)')
        host = state.sfu_host
        if host is None:
            raise NotLive(f"{room.name} is not broadcasting")
        if description is None and state.presenter == peer_id:
            args = {"room": room.name, "candidate": payload.get("candidate") or {}}
            await self._at(host, "presenter_candidate", args)
            return
        await self._at(host, "viewer_signal", {"room": room.name, "viewer": peer_id, **payload})

    async def subscribe(self, room: RoomRef, peer_id: str, layer: str) -> dict[str, Any]:
        state = await self._state(room)
        if state.sfu_host is None or not state.live:
            raise NotLive(f"{room.name} is not broadcasting yet")
        result = await self._at(state.sfu_host, "subscribe",
                                {"room": room.name, "viewer": peer_id, "layer": layer})
        return {"ok": True, "layer": result}

    async def unsubscribe(self, room: RoomRef, peer_id: str) -> None:
        state = await self._state(room)
        if state.sfu_host is None:
            raise UnknownPeer(f"you are not watching {room.name}")
        await self._at(state.sfu_host, "unsubscribe", {"room": room.name, "viewer": peer_id})

    async def set_layer(self, room: RoomRef, peer_id: str, layer: str) -> dict[str, Any]:
        state = await self._state(room)
        if state.sfu_host is None:
            raise NotLive(f"{room.name} is not broadcasting")
        result = await self._at(state.sfu_host, "layer",
                                {"room": room.name, "viewer": peer_id, "layer": layer})
        return {"ok": True, "layer": result}

    async def _state(self, room: RoomRef) -> RoomState:
        state = await self.host.store.peek(room.name)
        if state is None:
            raise NotInRoom(f"you have not joined {room.name}")
        return state

    # where the broadcast lives

    async def _at(self, host: str, op: str, args: dict[str, Any]) -> Any:
        if host == self.host_id:
            return await self.run(op, args)
        return await self._call(host, op, args)

    async def _close_at(self, host: str, name: str) -> None:
        """Close the room's broadcast held by another process. A holder that does not answer
        (crashed, or unreachable) is gone and its broadcast with it: carry on."""
        try:
            await self._call(host, "close", {"room": name})
        except (NotAvailable, TimeoutError) as error:
            logger.warning("process %s holding %s did not close it (%s); taken as gone",
                           host, name, error)

    async def close_elsewhere(self, name: str, host: str) -> None:
        """The room emptied while another process held its broadcast: close it there."""
        if host != self.host_id:
            await self._close_at(host, name)

    async def _call(self, host: str, op: str, args: dict[str, Any]) -> Any:
        if self.remote is None:
            raise NotAvailable("the broadcast is held by a process this one cannot reach")
        return await self.remote(host, op, args)

    async def run(self, op: str, args: dict[str, Any]) -> Any:
        """Run one operation on a broadcast of this process (for a local or remote caller)."""
        name = str(args.get("room"))
        if op == "close":
            await self.close_room(name)
            return None
        broadcast = self.broadcasts.get(name)
        if broadcast is None or broadcast.closed:
            raise NotLive(f"{name} is not broadcasting")
        viewer = str(args.get("viewer", ""))
        if op == "subscribe":
            offer = await broadcast.subscribe(viewer, str(args.get("layer")))
            # After the ack (this call returns first): the viewer's offer.
            self._spawn(self._to_peer(viewer, None, "signal", {
                "from": SFU_PEER_ID, "room": name,
                "description": {"type": offer.type, "sdp": offer.sdp}}))
            return broadcast.viewer_layer(viewer)
        if op == "viewer_signal":
            if "description" in args:
                raw = args["description"]
                await broadcast.accept(viewer, RTCSessionDescription(raw["sdp"], raw["type"]))
            else:
                await broadcast.add_viewer_candidate(viewer, args.get("candidate") or {})
            return None
        if op == "presenter_candidate":
            await broadcast.add_presenter_candidate(args.get("candidate") or {})
            return None
        if op == "layer":
            return await broadcast.set_layer(viewer, str(args.get("layer")))
        if op == "unsubscribe":
            await broadcast.unsubscribe(viewer)
            return None
        if op == "gone":
            await self._gone_local(broadcast, viewer)
            return None
        raise InvalidPayload(f"unknown relay operation {op[:40]}")

    async def _to_peer(self, peer_id: str, sid: str | None, event: str, data: Any) -> None:
        if sid is not None and self._send_local is not None:
            if await self._send_local(sid, event, data):
                return
        await self.host.emit(event, data, room=_peer_channel(peer_id))

    # peers leaving, rooms closing

    async def peer_gone(self, room_name: str, peer_id: str, state: RoomState | None) -> None:
        """A peer left ``room_name`` for good: the presenter's media stops, a viewer is
        unsubscribed. Never raises (it runs on disconnects)."""
        if state is None:
            # The room emptied (the store forgets it): whatever broadcast it had here ends.
            if room_name in self.broadcasts:
                await self.close_room(room_name)
            return
        if state.sfu_host is None:
            return
        try:
            await self._at(state.sfu_host, "gone", {"room": room_name, "viewer": peer_id})
        except YilianError:
            pass
        except Exception:
            logger.exception("the relay could not drop peer %s of %s", peer_id, room_name)

    async def _gone_local(self, broadcast: Broadcast, peer_id: str) -> None:
        state = await self.host.store.peek(broadcast.room)
        if state is None or state.presenter == peer_id:
            await self.close_room(broadcast.room)
            return
        try:
            await broadcast.unsubscribe(peer_id)
        except YilianError:
            pass

    async def close_room(self, name: str) -> None:
        """End the room's broadcast held here (presenter gone, session ended, take-over)."""
        broadcast = self.broadcasts.pop(name, None)
        self._record.pop(name, None)
        self._viewers_sent.pop(name, None)
        if broadcast is None:
            return
        await broadcast.close()
        async with self.host.store.room(name) as state:
            if state.sfu_host == self.host_id:
                state.sfu_host = None
                state.presenter = None
                state.live = False

    def stats(self) -> dict[str, Any]:
        return {name: b.stats() for name, b in self.broadcasts.items()}

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            coro.close()  # shutting down: the room state and its sockets go with the server
            return
        self._tasks.spawn(coro)

    async def close(self) -> None:
        """Close every broadcast of this process (recordings complete); idempotent."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(self.close_room(n) for n in list(self.broadcasts)),
                             return_exceptions=True)
        await self._tasks.close()


def _peer_channel(peer_id: str) -> str:
    return f"peer:{peer_id}"


def _host_channel(room: str) -> str:
    return f"hosts:{room}"
