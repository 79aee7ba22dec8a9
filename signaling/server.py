"""Builds the socket.io server for ``/rtc`` (with the Redis manager when a URL is set)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Mapping

import socketio
from aiohttp import web

from yilian.server.core import keys
from yilian.signaling import eio, wirejson
from yilian.signaling import keys as rtc_keys
from yilian.signaling.gate import AdmissionCheck, DatabaseGate
from yilian.signaling.namespace import NAMESPACE, Gate, RtcNamespace
from yilian.signaling.rooms import RoomKind
from yilian.signaling.store import MemoryRoomStore, RedisRoomStore, RoomStore

logger = logging.getLogger(__name__)

DEFAULT_CHANNEL = "yilian-rtc"
_EVENT_PREFIX = f"{socketio.packet.EVENT}{NAMESPACE},"
_MALFORMED_LOG_SECONDS = 60.0
_GARBAGE = (ValueError, TypeError, KeyError, IndexError, AttributeError)


class _SocketServer(socketio.AsyncServer):
    """python-socketio's server with a short path for ``/rtc`` events (the relay's hot path).

    A text event packet for ``/rtc`` (``2/rtc,[...]`` or ``2/rtc,<ack id>[...]``) from a
    socket connected to the namespace is decoded here and handed to the namespace, skipping
    the packet class, two log calls and three layers of handler lookup per message. What
    reaches the namespace, and the ack sent back, are what the library would produce; every
    other packet (connect, disconnect, acks, binary, other namespaces) takes the library's path.
    """

    _malformed_logged_at = float("-inf")
    _malformed_dropped = 0

    async def _handle_eio_message(self, eio_sid: str, data: object) -> None:
        try:
            await self._handle_frame(eio_sid, data)
        except _GARBAGE as exc:  # what the protocol code raises on a client's garbage
            self._malformed(eio_sid, data, exc)

    def _malformed(self, eio_sid: str, data: object, exc: Exception) -> None:
        """Drop a frame the protocol code could not take (invalid JSON, an event that is not
        a list, ...), keeping the connection. Logged once a minute at most, without a
        traceback: a client sending garbage in a loop must not flood the log."""
        now = time.monotonic()
        self._malformed_dropped += 1
        if now - self._malformed_logged_at < _MALFORMED_LOG_SECONDS:
            return
        text = data if isinstance(data, str) else repr(data)
        logger.warning("dropped %d malformed socket.io frame(s); the latest from %s: %s: %s "
                       "(frame starts %r)", self._malformed_dropped, eio_sid,
                       type(exc).__name__, exc, text[:80])
        self._malformed_logged_at = now
        self._malformed_dropped = 0

    async def _handle_frame(self, eio_sid: str, data: object) -> None:
        if (
            type(data) is str
            and data.startswith(_EVENT_PREFIX)
            and eio_sid not in self._binary_packet
        ):
            body = data[len(_EVENT_PREFIX) :]
            digits = 0
            while digits < len(body) and body[digits].isdigit():
                digits += 1
            ack_id = int(body[:digits]) if 0 < digits <= 19 else None
            if digits <= 19 and body[digits : digits + 1] == "[":
                event = wirejson.loads(body[digits:])
                sid = self.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
                handler = self.namespace_handlers.get(NAMESPACE)
                if (
                    event
                    and type(event[0]) is str
                    and sid is not None
                    and handler is not None
                    and NAMESPACE not in self.handlers  # no decorator-registered handlers
                    and self.manager.is_connected(sid, NAMESPACE)
                ):
                    result = await handler.trigger_event(event[0], sid, *event[1:])
                    if ack_id is not None:
                        if result is None:
                            args = []
                        elif isinstance(result, tuple):
                            args = list(result)
                        else:
                            args = [result]
                        await self._send_packet(
                            eio_sid,
                            self.packet_class(
                                socketio.packet.ACK, namespace=NAMESPACE, id=ack_id, data=args
                            ),
                        )
                    return
        await super()._handle_eio_message(eio_sid, data)


class RtcServer:
    """The socket.io server, its ``/rtc`` namespace and the room store, closed together."""

    def __init__(
        self,
        gate: Gate,
        *,
        grace_seconds: float,
        redis_url: str = "",
        channel: str = DEFAULT_CHANNEL,
    ) -> None:
        eio.install()  # one watchdog per socket instead of timers on every packet
        manager: socketio.AsyncManager | None = None
        store: RoomStore
        if redis_url:
            # Events for a room or a peer reach whichever process holds the socket.
            manager = socketio.AsyncRedisManager(redis_url, channel=channel)
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
            engineio_logger=False,
            # Same-origin only: the web client is served by the same app.
            cors_allowed_origins=None,
        )
        self.namespace = RtcNamespace(gate, store, grace_seconds=grace_seconds)
        self.sio.register_namespace(self.namespace)
        self._closed = False

    def attach(self, app: web.Application) -> None:
        """Serve socket.io at ``/socket.io`` on ``app``."""
        self.sio.attach(app, socketio_path="socket.io")

    async def close(self) -> None:
        """Disconnect every client, stop timers and release the store; idempotent."""
        if self._closed:
            return
        self._closed = True
        for sid in list(self.namespace.sessions):
            await self.sio.disconnect(sid, namespace=self.namespace.namespace)
        await self.sio.shutdown()
        await self.namespace.close()
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


def setup_rtc(app: web.Application, admission: Mapping[RoomKind, AdmissionCheck]) -> RtcServer:
    """Serve ``/rtc`` on ``app`` from its settings, admitting to each kind of room by the rule
    ``admission`` gives for it; register after the database context."""
    settings = app[keys.SETTINGS]
    rtc = RtcServer(
        DatabaseGate(lambda: app[keys.DATABASE], admission),
        grace_seconds=settings.rtc.resume_grace_seconds,
        redis_url=settings.redis_url,
        channel=settings.rtc.redis_channel,
    )
    app[rtc_keys.RTC] = rtc
    rtc.attach(app)
    app.cleanup_ctx.append(_rtc_ctx)
    return rtc


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
    yield
    await app[rtc_keys.RTC].close()
    gc.set_threshold(*thresholds)
    gc.unfreeze()
