"""A leaner websocket loop for python-engineio's ``AsyncSocket`` (the relay's hot path).

python-engineio (4.x) guards every packet with its own timer: each received frame is read
in a new task under ``asyncio.wait_for`` and each sent frame is taken off the queue under
another ``wait_for``, both with a timeout of ping interval + ping timeout. On Python 3.11
``wait_for`` wraps its awaitable in a task and arms a timer handle, so a relayed ``signal``
cost three task creations and two timer arm/cancel pairs before any of our code ran. At
1,000 sockets that was a third of the server's CPU (bench/signalling_bench.py: 10.7k ->
15.6k msg/s with the timers gone).

The timers exist to notice a dead peer. Here one watchdog per connection does that instead:
it wakes once per ping interval + ping timeout and closes the websocket when nothing at all
has arrived for that long. A live client answers the server's ping every ``ping_interval``
seconds, so it is never idle that long. Closing the websocket ends the read loop, which
then stops the writer (a ``None`` on the queue) and closes the engine.io socket, exactly as
the library's timeout path did. Everything else is the library's code (python-engineio
4.15, MIT licence), unchanged.

Two more shortcuts, each doing what the library does with less machinery in between:

- A received text ``MESSAGE`` packet goes straight to the server's ``message`` handler
  (python-socketio) when handlers run inline (``async_handlers=False``), instead of through
  ``Packet`` decoding, a log call and a closure built per packet by ``_trigger_event``.
- A small packet (an ICE candidate, an ack) sent while nothing is waiting to go out is
  written to the websocket at once instead of queued for the writer task to pick up in a
  later loop turn. "Nothing waiting" means the queue is empty, the writer is not part-way
  through a batch (a per-socket lock it holds while writing) and the connection's own send
  buffer is empty, so the write goes straight to the kernel: it neither reorders packets
  nor makes the sender wait on a slow receiver (that would stall the sender's read loop;
  a queued packet never does). Larger packets and any other case take the queue, as do
  packets whose direct write fails; the writer's own failure then closes the connection
  as before.

Client garbage never costs a traceback: a frame that is not an engine.io packet (an unknown
type, a type digit that is not ASCII, invalid base64) is dropped, a polling payload that does
not decode is refused with 400 and closes its session, and what the library logs goes through
the server's throttled log (``signaling.logs``).

``install()`` patches the class once, and only on the exact python-engineio release the
replaced methods come from (``PATCHED_RELEASE``, which pyproject.toml pins); with another
release the library runs as shipped. ``LIBRARY_SOURCES`` fingerprints the library's own
methods this replaces; tests/signaling/test_eio_loop.py fails when the pin, the installed
release and these disagree. bench/signalling_bench.py measured what it pays on 2026-11-30:
relay 24.1k msg/s patched against 11.7k on the stock loop (0.91 vs 0.45 of a bare relay).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from importlib.metadata import version
from typing import Any

from engineio import async_socket, exceptions, packet, payload

logger = logging.getLogger(__name__)

#: The python-engineio release whose AsyncSocket methods this module replaces.
PATCHED_RELEASE = "4.15.1"
#: sha256 (first 16 hex digits) of the source of each library method replaced, in that release.
LIBRARY_SOURCES = {"poll": "826f58a9f3606db2", "send": "0437276ccba7ab09",
                   "_websocket_handler": "27f120df4d717a24",
                   "handle_post_request": "82dca119a261a959"}
# Largest packet written directly (characters): at most 12 KiB of UTF-8, under aiohttp's
# threshold for compressing in a thread (16 KiB) and asyncio's default high-water mark
# (64 KiB), so a direct write into an empty send buffer never waits.
DIRECT_MAX_CHARS = 4096
# Frames read from one socket before its loop yields: aiohttp hands out buffered frames
# without suspending, so a client that floods would otherwise hold the event loop for as long
# as its buffer holds frames.
FAIR_SHARE = 16
#: What decoding a client's bytes raises in the library (binascii.Error is a ValueError).
_GARBAGE = (ValueError, TypeError, IndexError, KeyError)
# The packet types a client may send, as the library encodes them; the library reads the type
# with int(), which would also take other digits ("\u0664" for MESSAGE).
_PACKET_TYPES = ("0", "1", "2", "3", "4", "5", "6", "b")


def _decode(self: Any, p: Any) -> packet.Packet | None:
    """The engine.io packet ``p``, or None (and a throttled warning) when it is not one."""
    try:
        if type(p) is str and p[:1] not in _PACKET_TYPES:
            raise ValueError("not an engine.io packet type")
        return packet.Packet(encoded_packet=p)
    except _GARBAGE as exc:
        self.server.logger.warning("%s: dropped an invalid engine.io packet (%s, %d characters)",
                                   self.sid, type(exc).__name__, len(p))
        return None


async def _handle_post_request(self: Any, environ: Any) -> None:
    """Handle a long-polling POST: the library's, except that a payload that is not engine.io
    (undecodable, or a packet type that is not one of the ASCII digits) is refused with 400
    (the session closes, as engine.io does on a parse error) instead of being read with int()
    or logging a traceback."""
    length = int(environ.get("CONTENT_LENGTH", "0"))
    if length > self.server.max_http_buffer_size:
        raise exceptions.ContentTooLongError()
    try:
        body = (await environ["wsgi.input"].read(length)).decode("utf-8")
        if body and not body.startswith("d=") and any(
            part[:1] not in _PACKET_TYPES for part in body.split("\x1e")
        ):
            raise ValueError("not an engine.io packet type")
        packets = payload.Payload(encoded_payload=body).packets
    except _GARBAGE as exc:
        self.server.logger.warning("%s: refused an invalid engine.io payload (%s)", self.sid,
                                   type(exc).__name__)
        # Closed here without waiting: the server's own disconnect would wait for a poll to
        # collect the CLOSE packet, holding this request open until the client polls again.
        await self.close(wait=False, reason=self.server.reason.TRANSPORT_ERROR)
        raise exceptions.EngineIOError("invalid payload") from None
    for pkt in packets:
        await self.receive(pkt)


async def _poll(self: Any) -> list[Any]:
    """Wait for packets to send to the client (``[]`` once the socket is closing).

    The library's version waits under a timeout; the writer is always released by the
    ``None`` the read loop queues when it ends, so no timer is needed here.
    """
    try:
        first = await self.queue.get()
        self.queue.task_done()
    except asyncio.CancelledError:
        raise exceptions.QueueEmpty() from None
    if first is None:
        return []
    packets = [first]
    while True:
        try:
            pkt = self.queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        self.queue.task_done()
        if pkt is None:
            self.queue.put_nowait(None)
            break
        packets.append(pkt)
    return packets


async def _send(self: Any, pkt: Any) -> None:
    """Send a packet to the client: written at once when nothing is ahead of it."""
    if not await self.check_ping_timeout():
        return
    direct = self._yilian_direct
    if direct is not None and self.queue.empty():
        ws, transport, lock = direct
        if not lock.locked() and not transport.get_write_buffer_size():
            encoded = pkt.encode()
            if len(encoded) <= DIRECT_MAX_CHARS:
                async with lock:
                    try:
                        await ws.send(encoded)
                        return
                    except Exception:
                        pass  # the writer tries again and, failing too, closes the connection
    await self.queue.put(pkt)


async def _websocket_handler(self: Any, ws: Any) -> None:
    """Engine.IO handler for the websocket transport, with one watchdog per connection."""
    loop = asyncio.get_running_loop()
    limit = self.server.ping_interval + self.server.ping_timeout
    last_seen = loop.time()

    async def websocket_wait() -> Any:
        nonlocal last_seen
        data = await ws.wait()
        last_seen = loop.time()
        if data and len(data) > self.server.max_http_buffer_size:
            raise ValueError("packet is too large")
        return data

    if self.connected:
        # the socket was already connected, so this is an upgrade from polling
        self.upgrading = True  # hold packet sends during the upgrade
        try:
            pkt = await websocket_wait()
        except OSError:
            return
        decoded_pkt = _decode(self, pkt)
        if decoded_pkt is None or decoded_pkt.packet_type != packet.PING or \
                decoded_pkt.data != "probe":
            self.server.logger.info("%s: Failed websocket upgrade, no PING packet", self.sid)
            self.upgrading = False
            return
        await ws.send(packet.Packet(packet.PONG, data="probe").encode())
        await self.queue.put(packet.Packet(packet.NOOP))  # end poll
        try:
            pkt = await websocket_wait()
        except OSError:
            self.upgrading = False
            return
        decoded_pkt = _decode(self, pkt)
        if decoded_pkt is None or decoded_pkt.packet_type != packet.UPGRADE:
            self.upgraded = False
            self.server.logger.info(
                "%s: Failed websocket upgrade, expected UPGRADE packet", self.sid)
            self.upgrading = False
            return
        self.upgraded = True
        self.upgrading = False
    else:
        self.connected = True
        self.upgraded = True

    async def writer() -> None:
        while True:
            try:
                packets = await self.poll()
            except exceptions.QueueEmpty:
                break
            if not packets:
                break  # the connection is closing
            try:
                async with send_lock:
                    for pkt in packets:
                        await ws.send(pkt.encode())
            except Exception:
                break
        await ws.close()

    async def watchdog() -> None:
        while True:
            idle = loop.time() - last_seen
            if idle >= limit:
                self.server.logger.info("%s: nothing received for %.0f s, closing", self.sid,
                                        idle)
                await ws.close()
                return
            await asyncio.sleep(limit - idle)

    send_lock = asyncio.Lock()  # held by whoever is writing to the websocket
    writer_task = asyncio.ensure_future(writer())
    watchdog_task = asyncio.ensure_future(watchdog())
    self.server.logger.info("%s: Upgrade to websocket successful", self.sid)
    on_message = _inline_message_handler(self.server)
    request = getattr(ws, "environ", {}).get("aiohttp.request")
    transport = getattr(request, "transport", None)
    if transport is not None:
        self._yilian_direct = (ws, transport, send_lock)
    received = 0
    try:
        while True:
            received += 1
            if not received % FAIR_SHARE:
                await asyncio.sleep(0)  # let the other sockets and requests have a turn
            try:
                p = await websocket_wait()
            except asyncio.CancelledError:
                break
            except Exception:
                break
            if p is None:
                break  # connection closed by client
            if on_message is not None and type(p) is str and p[:1] == "4" and \
                    "0" <= p[1:2] <= "9":
                # A text MESSAGE the library would not read as JSON (socket.io packets all
                # start with their type digit): what receive() and _trigger_event do with it.
                try:
                    await on_message(self.sid, p[1:])
                except asyncio.CancelledError:
                    break
                except Exception:
                    self.server.logger.exception("message async handler error")
                continue
            pkt = _decode(self, p)
            if pkt is None:
                continue
            try:
                await self.receive(pkt)
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                self.server.logger.info("Receive error -- socket is closed")
                break
            except Exception:
                # an unexpected error: log it and close the connection properly
                self.server.logger.exception("Unknown receive error")
    finally:
        self._yilian_direct = None
        watchdog_task.cancel()
    await self.queue.put(None)  # unlock the writer task so it can exit
    await writer_task
    await asyncio.gather(watchdog_task, return_exceptions=True)
    await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)


def _inline_message_handler(server: Any) -> Any:
    """The server's ``message`` coroutine handler when it runs inline, else ``None``."""
    handler = server.handlers.get("message")
    if server.async_handlers or not inspect.iscoroutinefunction(handler):
        return None
    return handler


def install() -> bool:
    """Use the leaner loop in python-engineio's AsyncSocket; False when the version differs."""
    cls = async_socket.AsyncSocket
    if getattr(cls, "_yilian_lean_loop", False):
        return True
    installed = version("python-engineio")
    if installed != PATCHED_RELEASE:
        logger.warning("python-engineio %s (the lean loop is for %s): keeping its own "
                       "websocket loop", installed, PATCHED_RELEASE)
        return False
    cls.poll = _poll  # type: ignore[method-assign]
    cls.send = _send  # type: ignore[method-assign]
    cls._websocket_handler = _websocket_handler  # type: ignore[method-assign]
    cls.handle_post_request = _handle_post_request  # type: ignore[method-assign]
    # Class defaults: no direct writes until a websocket loop runs for the socket.
    cls._yilian_direct = None  # type: ignore[attr-defined]
    cls._yilian_lean_loop = True  # type: ignore[attr-defined]
    return True
