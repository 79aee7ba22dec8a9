"""Builds the socket.io server for ``/rtc`` and ``/notify`` (with the Redis manager when a URL
is set)."""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import socketio
from aiohttp import web
from aiortc import RTCIceServer

from yilian.server.core import keys
from yilian.signaling import eio, wirejson
from yilian.signaling import keys as rtc_keys
from yilian.signaling.errors import Unauthorized
from yilian.signaling.fanout import FanoutRedisManager
from yilian.signaling.gate import DatabaseGate, RoomRules
from yilian.signaling.inbox import DatabaseInbox, Inbox
from yilian.signaling.logs import ThrottledLog, describe_frame, scrub_engineio
from yilian.signaling.namespace import NAMESPACE, ChatPolicy, RtcNamespace
from yilian.signaling.notify import NotifyNamespace
from yilian.signaling.rooms import RoomKind
from yilian.signaling.session import UNAUTHORIZED, Gate
from yilian.signaling.sfu.broadcast import BroadcastConfig
from yilian.signaling.sfu.link import RelayLink
from yilian.signaling.sfu.ports import BroadcastRules
from yilian.signaling.sfu.relay import BroadcastRelay
from yilian.signaling.store import MemoryRoomStore, RedisRoomStore, RoomStore
from yilian.signaling.watch import recheck_every

logger = logging.getLogger(__name__)

DEFAULT_CHANNEL = "yilian-rtc"
_EVENT_PREFIX = f"{socketio.packet.EVENT}{NAMESPACE},"
_GARBAGE = (ValueError, TypeError, KeyError, IndexError, AttributeError)
_UNAUTHORIZED_ACK = [Unauthorized(UNAUTHORIZED).ack()]


def _ascii_header(frame: str) -> bool:
    """Whether the digits python-socketio reads from a packet's header (type, attachment
    count, ack id) are ASCII. It reads them with ``int()``, which also takes Arabic-Indic and
    other digits; such a frame is refused, not mapped onto another."""
    if frame[:1] not in ("0", "1", "2", "3", "4", "5", "6"):
        return frame == ""  # the library refuses the empty frame itself
    rest = frame[1:]
    dash = rest.find("-")
    if dash > 0 and rest[:dash].isdigit():
        if not rest[:dash].isascii():
            return False
        rest = rest[dash + 1 :]
    if rest[:1] == "/":
        comma = rest.find(",")
        rest = "" if comma == -1 else rest[comma + 1 :]
    end = 0
    while end < len(rest) and end <= 100 and rest[end].isdigit():
        end += 1
    return rest[:end].isascii()


class _SocketServer(socketio.AsyncServer):
    """python-socketio's server with a short path for ``/rtc`` events (the relay's hot path).

    A text event packet for ``/rtc`` (``2/rtc,[...]`` or ``2/rtc,<ack id>[...]``) from a
    socket connected to the namespace is decoded here and handed to the namespace, skipping
    the packet class, two log calls and three layers of handler lookup per message. What
    reaches the namespace, and the ack sent back, are what the library would produce; every
    other packet (connect, disconnect, acks, binary, other namespaces) takes the library's path.
    """

    garbage_log = ThrottledLog(logger)  # replaced per server in RtcServer
    known_events: frozenset[str] = frozenset()  # the events a log may name

    async def _handle_eio_message(self, eio_sid: str, data: object) -> None:
        try:
            await self._handle_frame(eio_sid, data)
        except _GARBAGE as exc:  # what the protocol code raises on a client's garbage
            self._malformed(eio_sid, data, exc)

    def _malformed(self, eio_sid: str, data: object, exc: Exception) -> None:
        """Drop a frame the protocol code could not take (invalid JSON, an event that is not
        a list, ...), keeping the connection. Logged once a minute at most, without a
        traceback or the frame's text (a chat line is patient data): a client sending
        garbage in a loop must not flood the log."""
        self.garbage_log.warning(
            "dropped a malformed socket.io frame from %s (%s; %s)", eio_sid,
            type(exc).__name__, describe_frame(data, self.known_events))

    async def _handle_frame(self, eio_sid: str, data: object) -> None:
        if (
            type(data) is str
            and data.startswith(_EVENT_PREFIX)
            and eio_sid not in self._binary_packet
        ):
            body = data[len(_EVENT_PREFIX) :]
            digits = 0
            while digits < len(body) and "0" <= body[digits] <= "9":  # ASCII only
                digits += 1
            ack_id = int(body[:digits]) if 0 < digits <= 19 else None
            if digits <= 19 and body[digits : digits + 1] == "[":
                event = wirejson.loads(body[digits:])
                sid = self.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
                if sid is None or not self.manager.is_connected(sid, NAMESPACE):
                    # Not (or no longer) connected to /rtc: never authenticated, or ended
                    # with its token. Answered, so a client knows; never dispatched.
                    if ack_id is not None:
                        await self._ack(eio_sid, ack_id, _UNAUTHORIZED_ACK)
                    return
                handler = self.namespace_handlers.get(NAMESPACE)
                if (
                    event
                    and type(event[0]) is str
                    and handler is not None
                    and NAMESPACE not in self.handlers  # no decorator-registered handlers
                ):
                    result = await handler.trigger_event(event[0], sid, *event[1:])
                    if ack_id is not None:
                        if result is None:
                            args = []
                        elif isinstance(result, tuple):
                            args = list(result)
                        else:
                            args = [result]
                        await self._ack(eio_sid, ack_id, args)
                    return
        if type(data) is str and not _ascii_header(data):
            raise ValueError("a socket.io packet header with non-ASCII digits")
        await super()._handle_eio_message(eio_sid, data)

    async def _handle_connect(self, eio_sid: str, namespace: str, data: Any) -> None:
        await super()._handle_connect(eio_sid, namespace, data)
        # Only once the client has been told it is connected may events reach it (the
        # library sends CONNECT after the handler returns): /notify then sends the unread count.
        handler = self.namespace_handlers.get(namespace or "/")
        if isinstance(handler, NotifyNamespace):
            sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
            if sid is not None and self.manager.is_connected(sid, namespace):
                handler.connected(sid)

    async def _ack(self, eio_sid: str, ack_id: int, args: list[Any]) -> None:
        await self._send_packet(
            eio_sid,
            self.packet_class(socketio.packet.ACK, namespace=NAMESPACE, id=ack_id, data=args),
        )


class RtcServer:
    """The socket.io server, its ``/rtc`` and ``/notify`` namespaces and the room store,
    closed together."""

    def __init__(
        self,
        gate: Gate,
        *,
        inbox: Inbox,
        grace_seconds: float,
        redis_url: str = "",
        channel: str = DEFAULT_CHANNEL,
        chat: ChatPolicy | None = None,
        recheck_seconds: float = 5.0,
        websocket_only: bool = False,
    ) -> None:
        eio.install()  # one watchdog per socket instead of timers on every packet
        manager: FanoutRedisManager | None = None
        store: RoomStore
        if redis_url:
            # Events for a room or a peer reach whichever process holds the socket.
            manager = FanoutRedisManager(redis_url, channel=channel)
            store = RedisRoomStore(redis_url, prefix=f"{channel}:room:")
        else:
            store = MemoryRoomStore()
        self.store = store
        self._manager = manager
        self.sio = _SocketServer(
            async_mode="aiohttp",
            client_manager=manager,
            async_handlers=False,
            json=wirejson,
            # Notice a dead network within ~15 s, so the resume grace period starts early.
            ping_interval=10,
            ping_timeout=5,
            logger=False,
            # python-engineio logs each packet's contents at INFO and a traceback for each
            # packet it cannot decode: through a throttled log, it says one line a minute.
            engineio_logger=ThrottledLog(logging.getLogger("yilian.signaling.engineio"),
                                         scrub=scrub_engineio),
            # Same-origin only: the web client is served by the same app.
            cors_allowed_origins=None,
            # Several processes on one port: a long-polling session's requests would reach
            # whichever process the kernel picks, a websocket stays with one.
            transports=["websocket"] if websocket_only else ["polling", "websocket"],
        )
        self.sio.garbage_log = ThrottledLog(logger)
        self.namespace = RtcNamespace(gate, store, grace_seconds=grace_seconds, chat=chat)
        self.relay: BroadcastRelay | None = None
        self._link: RelayLink | None = None
        self.sio.register_namespace(self.namespace)
        self.notify = NotifyNamespace(gate, inbox)
        self.sio.register_namespace(self.notify)
        if manager is not None:
            manager.fanout[self.notify.namespace] = self.notify.deliver_local
        self.sio.known_events = self.namespace.events | self.notify.events
        self.recheck_seconds = recheck_seconds
        self._recheck: asyncio.Task[None] | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._closed = False

    def use_relay(self, relay: BroadcastRelay) -> None:
        """Serve teaching rooms' broadcasts (the peer ``sfu``) with ``relay``."""
        self.relay = relay
        self.namespace.use_relay(relay)
        if self._manager is not None:
            # Requests for a broadcast held by another process travel through Redis.
            self._link = RelayLink(self._manager, relay)
            relay.remote = self._link.call

    def attach(self, app: web.Application) -> None:
        """Serve socket.io at ``/socket.io`` on ``app``."""
        self.sio.attach(app, socketio_path="socket.io")

    def start(self) -> None:
        """Start re-checking the sockets' tokens and rooms (on the running loop)."""
        if self._recheck is None and not self._closed:
            self._recheck = asyncio.get_running_loop().create_task(
                recheck_every(self.namespace, self.recheck_seconds, [self.notify]),
                name="rtc-recheck")

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the server closes (to unsubscribe from a notifier)."""
        self._unsubscribe.append(callback)

    async def close(self) -> None:
        """Disconnect every client, stop timers and release the store; idempotent."""
        if self._closed:
            return
        self._closed = True
        for callback in self._unsubscribe:
            callback()
        if self._recheck is not None:
            self._recheck.cancel()
            await asyncio.gather(self._recheck, return_exceptions=True)
        for ns in (self.namespace, self.notify):
            for sid in list(ns.sessions):
                await self.sio.disconnect(sid, namespace=ns.namespace)
        await self.sio.shutdown()
        await self.namespace.close()  # the broadcasts end here, recordings complete
        if self._link is not None:
            await self._link.close()
        await self.notify.close()
        await self._close_manager()
        await self.store.close()

    async def _close_manager(self) -> None:
        # python-socketio starts the Redis listener task on the first connection and has no
        # call that stops it; cancel it and close its connections ourselves.
        manager = self._manager
        if manager is None:
            return
        listener = getattr(manager, "thread", None)
        if isinstance(listener, asyncio.Future) and not listener.done():
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        for name in ("pubsub", "redis"):
            conn = getattr(manager, name, None)
            if conn is not None:
                await conn.aclose()


def setup_rtc(app: web.Application, rules: Mapping[RoomKind, RoomRules],
              broadcast: BroadcastRules | None = None) -> RtcServer:
    """Serve ``/rtc`` and ``/notify`` on ``app`` from its settings, deciding who may join and
    speak in each kind of room by the ``rules`` given for it; register after the database
    context. Once the database is open, its committed notifications go to ``/notify``.
    With ``broadcast`` (the teaching sessions' rules) the relay ``sfu`` serves teaching
    rooms; without, signals to ``sfu`` are answered ``not_available``.

    Sockets live as long as their token: a logout through this app (the core's token cache
    announces it) ends them at once; expiry, deactivation and logouts elsewhere are found by
    the periodic re-check."""
    settings = app[keys.SETTINGS]
    gate = DatabaseGate(lambda: app[keys.DATABASE], rules)
    rtc = RtcServer(
        gate,
        inbox=DatabaseInbox(lambda: app[keys.DATABASE]),
        grace_seconds=settings.rtc.resume_grace_seconds,
        redis_url=settings.redis_url,
        channel=settings.rtc.redis_channel,
        chat=ChatPolicy(settings.rtc.chat_max_chars, settings.rtc.chat_burst,
                        settings.rtc.chat_per_second),
        recheck_seconds=settings.rtc.recheck_seconds,
        websocket_only=settings.workers > 1,
    )
    app[rtc_keys.RTC] = rtc
    if broadcast is not None:
        serve_broadcasts(app, broadcast)
    for revoked in (rtc.namespace.token_revoked, rtc.notify.token_revoked):
        rtc.on_close(app[keys.TOKEN_CACHE].on_revoked(revoked))
    rtc.attach(app)
    app.cleanup_ctx.append(_rtc_ctx)
    return rtc


def serve_broadcasts(app: web.Application, broadcast: BroadcastRules) -> BroadcastRelay:
    """Let the app's signalling server (``setup_rtc``) relay teaching broadcasts, asking
    ``broadcast`` (the teaching sessions' rules) who may publish and where recordings go;
    ``setup_rtc(..., broadcast=...)`` calls it. Once only: later calls return the relay."""
    rtc = app[rtc_keys.RTC]
    if rtc.relay is not None:
        return rtc.relay
    settings = app[keys.SETTINGS]
    gate = rtc.namespace.gate
    assert isinstance(gate, DatabaseGate)
    gate.broadcast = broadcast
    config = BroadcastConfig(
        # The relay answers from the server's own address; STUN finds its public one.
        ice_servers=[RTCIceServer(urls=u) for u in settings.rtc.stun_urls],
        max_bitrate=settings.rtc.teaching_max_bitrate,
        low_layer=settings.rtc.teaching_low_layer,
        low_bitrate=settings.rtc.teaching_low_bitrate,
    )
    relay = BroadcastRelay(gate, config, host_id=uuid.uuid4().hex)
    rtc.use_relay(relay)
    return relay


async def _rtc_ctx(app: web.Application) -> AsyncIterator[None]:
    """Close the signalling server before the database it authenticates against."""
    # Signalling allocates a few short-lived objects per relayed message; with the default
    # collector settings, full passes over the app's long-lived heap (ORM registry, schemas,
    # a thousand sockets) took half the relay's CPU at 1,000 clients (bench/signalling_bench.py:
    # 6.1k -> 10.4k msg/s). So: freeze what exists at startup and collect the young
    # generation less often. Undone at shutdown, so frozen objects can be freed again.
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], 50_000), 20, 100)
    rtc = app[rtc_keys.RTC]
    db = app[keys.DATABASE]
    db.notify_sink = rtc.notify.deliver
    rtc.start()
    yield
    db.notify_sink = None  # what commits from now on waits in the inbox
    await rtc.close()
    gc.set_threshold(*thresholds)
    gc.unfreeze()
