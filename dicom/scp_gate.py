"""The SCP's connection gate: TLS, limits and timeouts in front of pynetdicom's acceptor.

A few idle sockets must not shut modalities out (pynetdicom alone counts a connection that
never sends anything against its association limit for 30 s, and one sending half a PDU
for ever). Here a connection counts against ``max_associations`` and against its address's
``max_associations_per_address`` (addresses no modality may call from share one quota) from
the moment it is accepted. Until its whole A-ASSOCIATE-RQ has arrived it belongs to the gate,
not to pynetdicom: a thread waiting on the socket, nothing more. A new connection that finds
its quota full closes the oldest such waiting connection instead of being refused; only
when every slot of the quota is associated is it refused. A connection that has not
associated within ``acse_timeout`` of connecting (TLS handshake included) is closed; an
association silent for ``network_timeout`` is aborted (pynetdicom's idle timer), and so is
one stalled that long in the middle of a PDU (the socket's timeout).
"""

from __future__ import annotations

import logging
import select
import socket
import socketserver
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

from yilian.server.core.settings import DicomSettings

logger = logging.getLogger(__name__)
_A_ASSOCIATE_RQ = 0x01
# An A-ASSOCIATE-RQ proposing 128 presentation contexts takes about 15 KB.
MAX_REQUEST = 64 * 1024
_PEEK_INTERVAL = 0.05


def tls_context(settings: DicomSettings) -> ssl.SSLContext | None:
    """The SCP's TLS context (TLS 1.2 or later), or None for plain TCP."""
    if settings.tls_cert is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    if settings.tls_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(settings.tls_ca))
    return ctx


class Throttle:
    """Says a repeated thing (a refusal from one address) at most once a ``period``."""

    def __init__(self, period: float = 60.0, size: int = 4096) -> None:
        self.period, self.size = period, size
        self._seen: dict[Any, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def __call__(self, key: Any) -> int | None:
        """None to stay quiet; otherwise how many repeats went unsaid since the last time."""
        now = time.monotonic()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last[0] < self.period:
                self._seen[key] = (last[0], last[1] + 1)
                return None
            if len(self._seen) >= self.size:
                self._seen.clear()
            self._seen[key] = (now, 0)
            return 0 if last is None else last[1]


@dataclass(frozen=True)
class Limits:
    """The gate's limits (from :class:`DicomSettings`)."""

    total: int
    per_address: int
    acse_timeout: float
    network_timeout: float


@dataclass(eq=False)
class _Conn:
    """One accepted connection. ``state``: waiting (for its A-ASSOCIATE-RQ; the gate's),
    negotiating, established, or closing (told to go, not yet gone)."""

    sock: socket.socket
    ip: str
    bucket: str
    since: float
    state: str = "waiting"
    assoc: Association | None = None
    thread: threading.Thread | None = None


def _shut(sock: socket.socket) -> None:
    """End a connection from any thread (the base method: an SSL socket's own would drop its
    TLS state under the thread reading it)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Handler(RequestHandler):
    """pynetdicom's request handler, waiting for the association it starts to end."""

    def handle(self) -> None:
        server = self.server
        assert isinstance(server, GatedServer)
        assoc = self._create_association()
        server.attach(assoc)
        evt.trigger(assoc, evt.EVT_CONN_OPEN, {"address": self.client_address})
        assoc.start()
        assoc.join()


class GatedServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with the connection gate (see the module's description)."""

    daemon_threads = True
    block_on_close = False
    # The kernel's queue of connections not yet accepted (socketserver's default is 5: a
    # burst of connections would have a modality wait a second for a SYN retry).
    request_queue_size = 128

    def __init__(self, ae: AE, address: tuple[str, int], ae_title: str, contexts: Any,
                 ssl_context: ssl.SSLContext | None = None,
                 evt_handlers: list[Any] | None = None, *, limits: Limits,
                 tls: ssl.SSLContext | None, listed: Callable[[str], bool]) -> None:
        self.limits, self.tls, self.listed = limits, tls, listed
        # Connection threads at most: the associated and negotiating ones, and those told to
        # close that have not yet ended.
        self._most = 2 * limits.total
        self._conns: dict[int, _Conn] = {}
        self._lock = threading.Condition()  # notified when a connection's thread ends
        self._local = threading.local()
        self._notice = Throttle()
        super().__init__(ae, address, ae_title, contexts, None, evt_handlers,
                         request_handler=_Handler)
        self.bind(evt.EVT_ESTABLISHED, self._on_established)

    # -- the accepting thread --------------------------------------------------------------

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        """Accept without a TLS handshake (that happens on the connection's own thread)."""
        assert self.socket is not None
        sock, address = self.socket.accept()
        sock.settimeout(self.limits.acse_timeout)
        return sock, address

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Admit a connection within the limits, closing the oldest waiting one of a full
        quota to make room; refuse it when every slot is associated."""
        ip = str(client_address[0])
        bucket = ip if self.listed(ip) else "*"
        victim: _Conn | None = None
        with self._lock:
            # Connections told to close are counted until their threads end (a moment), so
            # a flood of connections displacing one another cannot pile up threads; the
            # next connection waits for them rather than being refused.
            self._lock.wait_for(lambda: len(self._conns) < self._most, 0.5)
            live = [c for c in self._conns.values() if c.state != "closing"]
            same = [c for c in live if c.bucket == bucket]
            pool = same if len(same) >= self.limits.per_address else \
                live if len(live) >= self.limits.total else None
            if pool is not None:
                waiting = [c for c in pool if c.state == "waiting"]
                if not waiting or len(self._conns) >= self._most:
                    self._say(("full", bucket), "DICOM connection from %s refused: %d of its "
                              "quota and %d in all are in use", ip, len(same), len(live))
                    return False
                victim = min(waiting, key=lambda c: c.since)
                victim.state = "closing"
            self._conns[id(request)] = _Conn(request, ip, bucket, time.monotonic())
        if victim is not None:
            self._say(("evict", victim.bucket), "DICOM connection from %s closed for a newer "
                      "one: it had not sent its A-ASSOCIATE-RQ", victim.ip)
            _shut(victim.sock)
        return True

    def service_actions(self) -> None:
        """Every half second: close connections that have not associated in time."""
        super().service_actions()
        now = time.monotonic()
        with self._lock:
            late = [c for c in self._conns.values() if c.state in ("waiting", "negotiating")
                    and now - c.since > self.limits.acse_timeout]
            for c in late:
                c.state = "closing"
        for c in late:
            self._say(("late", c.bucket), "DICOM connection from %s closed: no association "
                      "within %.0f s", c.ip, self.limits.acse_timeout)
            _shut(c.sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("DICOM connection from %s failed", client_address[0])

    # -- each connection's thread ----------------------------------------------------------

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Handshake (TLS), wait for the A-ASSOCIATE-RQ, then hand over to pynetdicom."""
        with self._lock:
            conn = self._conns.get(id(request))
        sock = request
        try:
            if conn is None:
                return
            conn.thread = threading.current_thread()
            self._local.conn = conn
            if self.tls is not None:
                sock = self.tls.wrap_socket(request, server_side=True,
                                            do_handshake_on_connect=False)
                with self._lock:
                    conn.sock = sock
                if conn.state != "waiting":
                    return
                sock.do_handshake()
            if not self._await_request(conn, sock):
                return
            with self._lock:
                if conn.state != "waiting":
                    return
                conn.state = "negotiating"
            self.finish_request(sock, client_address)
        except (OSError, ValueError) as exc:  # ssl.SSLError and timeouts are OSErrors
            logger.info("DICOM connection from %s ended before associating: %s",
                        client_address[0], exc)
        except Exception:
            logger.exception("DICOM connection from %s failed", client_address[0])
        finally:
            with self._lock:
                self._conns.pop(id(request), None)
                self._lock.notify_all()
            _shut(sock)
            sock.close()

    def _await_request(self, conn: _Conn, sock: socket.socket) -> bool:
        """Wait (until ``acse_timeout`` after connecting) for the whole A-ASSOCIATE-RQ to be
        in the socket's buffer (peeked, not read, so pynetdicom reads it as usual). Under TLS
        the record cannot be peeked: the first bytes of it will do."""
        tls = isinstance(sock, ssl.SSLSocket)
        while conn.state == "waiting":
            left = conn.since + self.limits.acse_timeout - time.monotonic()
            if left <= 0:
                self._say(("late", conn.bucket), "DICOM connection from %s closed: no "
                          "A-ASSOCIATE-RQ within %.0f s", conn.ip, self.limits.acse_timeout)
                return False
            if tls and sock.pending():  # type: ignore[attr-defined]
                return True
            ready, _, _ = select.select([sock], [], [], min(left, 1.0))
            if not ready:
                continue
            if tls:
                return True
            head = sock.recv(MAX_REQUEST, socket.MSG_PEEK)
            if not head:
                return False  # closed by the peer, or by the gate
            length = struct.unpack(">L", head[2:6])[0] if len(head) >= 6 else 0
            if head[0] != _A_ASSOCIATE_RQ or length + 6 > MAX_REQUEST:
                self._say(("junk", conn.bucket), "DICOM connection from %s closed: it did "
                          "not open with an A-ASSOCIATE-RQ (PDU type 0x%02x, %d bytes)",
                          conn.ip, head[0], length + 6)
                return False
            if len(head) >= 6 and len(head) >= length + 6:
                return True
            time.sleep(_PEEK_INTERVAL)  # part of it is here: wait for the rest
        return False

    def attach(self, assoc: Association) -> None:
        """Note the association running this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.assoc = assoc

    def _on_established(self, event: evt.Event) -> None:
        with self._lock:
            conn = next((c for c in self._conns.values() if c.assoc is event.assoc), None)
            if conn is None or conn.state != "negotiating":
                return
            conn.state = "established"
        conn.sock.settimeout(self.limits.network_timeout)

    def _say(self, key: Any, message: str, *args: Any) -> None:
        repeats = self._notice(key)
        if repeats is not None:
            logger.warning(message + (f" ({repeats} more like it in the last minute)"
                                      if repeats else ""), *args)

    # -- stopping --------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop accepting, end every connection (aborting associations) and wait for them."""
        socketserver.BaseServer.shutdown(self)
        self.server_close()
        with self._lock:
            conns = list(self._conns.values())
            for c in conns:
                c.state = "closing"
        for c in conns:
            if c.assoc is not None and c.assoc.is_established:
                c.assoc.abort()
            _shut(c.sock)
        deadline = time.monotonic() + 10
        for c in conns:
            if c.thread is not None:
                c.thread.join(max(0.0, deadline - time.monotonic()))
