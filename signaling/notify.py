"""The ``/notify`` socket.io namespace: live notifications to each user's sockets.

A socket authenticates at connect like ``/rtc`` (``auth={"token"}``) and joins the room
``user:<id>``; a user with three tabs open has three sockets there, on any process. After a
write transaction commits, ``Database.notify_sink`` (:meth:`NotifyNamespace.deliver`) hands
the committed inbox rows here; each is emitted as ``notification`` to its user's room. With
several processes the Redis manager carries the emit to whichever process holds the sockets.
The request that committed never waits for the emits: they run in a background task. A batch
(one alert to many users) is one Redis message, not one per user (``signaling.fanout``).

Clients may send ``unread`` (ack ``{"ok", "count"}``), ``read`` ``{"id"}`` and ``read-all``;
after a read every socket of that user gets ``unread`` ``{"count"}``, so all tabs agree. On
connect the server sends ``unread`` once. Sockets end with their token (logout, expiry,
deactivation) like ``/rtc`` ones: ``session-ended``, then a disconnect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import socketio

from yilian.server.core.errors import error_body
from yilian.server.core.models import Notification
from yilian.server.core.notify import payload
from yilian.server.core.schemas import MAX_ID
from yilian.server.core.tasks import TaskSet
from yilian.signaling import wirejson
from yilian.signaling.errors import InvalidPayload, Unauthorized
from yilian.signaling.fanout import FanoutRedisManager
from yilian.signaling.inbox import Inbox
from yilian.signaling.session import UNAUTHORIZED, Gate, Session, answer_event

logger = logging.getLogger(__name__)

NAMESPACE = "/notify"


def user_room(user_id: int | str) -> str:
    """The socket.io room holding every ``/notify`` socket of one user, on every process."""
    return f"user:{user_id}"


def _no_payload(data: Any, event: str) -> None:
    if data not in (None, {}):
        raise InvalidPayload(f'"{event}" takes no payload (or {{}})')


def _notification_id(data: Any) -> int:
    """``{"id": <int>}``, strictly: a JSON integer in range, nothing else in the object."""
    if not isinstance(data, dict) or set(data) != {"id"}:
        raise InvalidPayload('"read" takes {"id": <notification id>}')
    value = data["id"]
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise InvalidPayload('"id" must be a notification id (a positive integer)')
    return value


class NotifyNamespace(socketio.AsyncNamespace):
    """Handlers for ``/notify``; every client event answers with an ack, errors included."""

    def __init__(self, gate: Gate, inbox: Inbox) -> None:
        super().__init__(NAMESPACE)
        self.gate = gate
        self.inbox = inbox
        self.sessions: dict[str, Session] = {}
        self._tasks = TaskSet()
        self._handlers: dict[str, Callable[[str, Any], Awaitable[dict[str, Any]]]] = {
            "unread": self._unread,
            "read": self._read,
            "read-all": self._read_all,
        }

    @property
    def events(self) -> frozenset[str]:
        """The names of the events clients may send."""
        return frozenset(self._handlers)

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Route every event, so unknown ones, garbage and crashes still get an error ack."""
        sid = args[0]
        # Only the server's own lifecycle calls are real (a client may send an event named
        # "connect"): see RtcNamespace.trigger_event.
        if event == "connect" and sid not in self.sessions:
            return await self._connect(*args)
        if event == "disconnect" and not self.server.manager.is_connected(sid, NAMESPACE):
            self.sessions.pop(sid, None)
            return None
        return await answer_event(self._handlers, sid, event, args, self.sessions.get(sid),
                                  missing=Unauthorized(UNAUTHORIZED),
                                  end_session=self.end_session, label="notify")

    # connection lifecycle

    async def _connect(self, sid: str, environ: Any, auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        user = await self.gate.authenticate(token) if isinstance(token, str) and token else None
        if user is None:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        self.sessions[sid] = Session(user)
        await self.enter_room(sid, user_room(user.user_id))

    def connected(self, sid: str) -> None:
        """The client has been told it is connected: send it the unread count."""
        session = self.sessions.get(sid)
        if session is not None:
            self._tasks.spawn(self._send_unread(sid, session))

    async def _send_unread(self, sid: str, session: Session) -> None:
        try:
            count = await self.inbox.unread(session.user.token)
        except Unauthorized:
            self.end_session(sid)
            return
        except Exception as exc:  # the client can still ask with "unread"
            logger.warning("unread count for %s failed (%s)", sid, type(exc).__name__)
            return
        await self.emit("unread", {"count": count}, to=sid)

    def end_session(self, sid: str) -> None:
        """The socket's token is no longer good: refuse its events, say ``session-ended``
        and disconnect it."""
        session = self.sessions.get(sid)
        if session is None or session.ended:
            return
        session.ended = True
        self._tasks.spawn(self._kick(sid))

    async def _kick(self, sid: str) -> None:
        await self.emit("session-ended", error_body("unauthorized", UNAUTHORIZED), to=sid)
        await self.server.disconnect(sid, namespace=NAMESPACE)

    def token_revoked(self, digest: str) -> None:
        """A token was revoked through this process: end every socket it opened, at once."""
        for sid, session in list(self.sessions.items()):
            if session.user.token == digest:
                self.end_session(sid)

    # delivery

    def deliver(self, rows: Iterable[Notification]) -> None:
        """``Database.notify_sink``: emit committed notifications without blocking the
        committing request (the payloads are taken now, while the rows are at hand)."""
        batch = [(n.user_id, payload(n)) for n in rows]
        if batch:
            self._tasks.spawn(self._emit_all(batch), name="notify-deliver")

    async def _emit_all(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        items = [(user_room(user_id), data) for user_id, data in batch]
        manager = self.server.manager
        if isinstance(manager, FanoutRedisManager):
            try:  # the other processes' sockets: one publish for the whole batch
                await manager.publish_each(NAMESPACE, "notification", items)
            except Exception as exc:  # the rows are in the inboxes; this process still sends
                logger.warning("publishing %d notifications failed (%s: %.200s)",
                               len(items), type(exc).__name__, exc)
        await self.deliver_local("notification", items)

    async def deliver_local(self, event: str, items: list[Any]) -> None:
        """Write ``event`` with each item's data to the sockets of its room held by this
        process: encoded once per item, straight to engine.io, as ``/rtc`` does for signals.
        Also the ``FanoutRedisManager`` handler for batches other processes published."""
        manager = self.server.manager
        rooms = manager.rooms.get(NAMESPACE, {})
        for room, data in items:
            members = rooms.get(room)
            if not members:
                continue
            frame = f"2{NAMESPACE}," + wirejson.dumps([event, data])
            now = time.time()
            for sid, eio_sid in list(members.items()):
                # a socket whose token ended (expiry, a logout elsewhere not yet re-checked)
                # gets nothing more, as its own events are already refused
                session = self.sessions.get(sid)
                if session is None or not session.live(now):
                    continue
                if manager.is_connected(sid, NAMESPACE):
                    try:
                        await self.server.eio.send(eio_sid, frame)
                    except Exception as exc:  # that socket is going; the others still get it
                        logger.info("notification to %s not sent (%s)", sid,
                                    type(exc).__name__)

    # events

    async def _unread(self, sid: str, data: Any) -> dict[str, Any]:
        _no_payload(data, "unread")
        return {"ok": True, "count": await self.inbox.unread(self.sessions[sid].user.token)}

    async def _read(self, sid: str, data: Any) -> dict[str, Any]:
        notification_id = _notification_id(data)
        session = self.sessions[sid]
        count = await self.inbox.read(session.user.token, notification_id)
        await self.emit("unread", {"count": count}, room=user_room(session.user.user_id))
        return {"ok": True, "id": notification_id, "unread": count}

    async def _read_all(self, sid: str, data: Any) -> dict[str, Any]:
        _no_payload(data, "read-all")
        session = self.sessions[sid]
        marked, count = await self.inbox.read_all(session.user.token)
        await self.emit("unread", {"count": count}, room=user_room(session.user.user_id))
        return {"ok": True, "marked": marked, "unread": count}

    async def close(self) -> None:
        """Cancel deliveries still under way; idempotent."""
        await self._tasks.close()
        self.sessions.clear()
