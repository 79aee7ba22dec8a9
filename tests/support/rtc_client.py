"""A Python ``/rtc`` client: socket.io signalling plus one ``PeerLink`` per remote peer.

Used by the tests and the benchmark as a real peer, and usable as a reference client: it
resumes after a dropped socket, restarts dead media paths and follows the server's polite
roles. See docs/signalling.md for the protocol it speaks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from aiortc import MediaStreamTrack, RTCIceServer

from tests.support.rtc_peer import PeerLink

logger = logging.getLogger(__name__)

NAMESPACE = "/rtc"


def ice_servers_from_json(body: dict[str, Any]) -> list[RTCIceServer]:
    """Turn a ``/api/rtc/ice-servers`` body into aiortc ``RTCIceServer`` objects."""
    return [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in body.get("iceServers", [])
    ]


class RtcClient:
    """One participant: a socket.io connection to ``/rtc`` and its peer links."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        ice_servers: list[RTCIceServer] | None = None,
        label: str = "client",
        make_tracks: Callable[[], list[MediaStreamTrack]] | None = None,
        auto_negotiate: bool = True,
        relay_only: bool = False,
    ) -> None:
        self.relay_only = relay_only
        self.base_url = base_url
        self.token = token
        self.label = label
        self.ice_servers = list(ice_servers or [])
        self.make_tracks = make_tracks
        self.auto_negotiate = auto_negotiate
        self.sio = socketio.AsyncClient(
            reconnection=True,
            reconnection_delay=0.1,
            reconnection_delay_max=0.5,
            randomization_factor=0,
        )
        self.links: dict[str, PeerLink] = {}
        self.events: list[tuple[str, Any]] = []
        self.room: str | None = None
        self.peer_id: str | None = None
        self.resumes = 0
        self.resumed = asyncio.Event()
        self._linked = asyncio.Event()
        self._connected_once = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._register()

    # socket.io plumbing

    def _register(self) -> None:
        sio = self.sio
        sio.on("connect", self._on_connect, namespace=NAMESPACE)
        sio.on("peer-joined", self._on_peer_joined, namespace=NAMESPACE)
        sio.on("peer-left", self._on_peer_left, namespace=NAMESPACE)
        sio.on("signal", self._on_signal, namespace=NAMESPACE)
        sio.on("admitted", self._on_admitted, namespace=NAMESPACE)
        for event in ("chat", "refused", "lobby-waiting", "lobby-left"):
            sio.on(event, self._recorder(event), namespace=NAMESPACE)

    def _recorder(self, event: str) -> Callable[[Any], Awaitable[None]]:
        async def record(data: Any) -> None:
            self.events.append((event, data))

        return record

    async def connect(self) -> None:
        """Open the socket (websocket transport, token in the auth payload)."""
        await self.sio.connect(
            self.base_url,
            namespaces=[NAMESPACE],
            auth={"token": self.token},
            transports=["websocket"],
            wait_timeout=10,
        )

    async def call(self, event: str, data: Any, wait_seconds: float = 10) -> Any:
        """Emit an event and return the server's ack."""
        return await self.sio.call(event, data, namespace=NAMESPACE, timeout=wait_seconds)

    async def _send_signal(self, to: str, payload: dict[str, Any]) -> None:
        ack = await self.call("signal", {"to": to, **payload})
        if not ack.get("ok"):
            logger.info("%s: signal to %s refused: %s", self.label, to, ack)

    # room membership

    async def join(self, room: str) -> dict[str, Any]:
        """Join a room; as the newcomer, offer to every peer already there."""
        ack = await self.call("join", {"room": room})
        if ack.get("ok"):
            self.room, self.peer_id = room, ack["peer_id"]
            self._meet(ack.get("peers", []))
        return ack

    async def leave(self) -> dict[str, Any]:
        ack = await self.call("leave", {"room": self.room})
        await self._close_links()
        self.room = self.peer_id = None
        return ack

    def _meet(self, peers: list[dict[str, Any]]) -> None:
        for info in peers:
            link = self._link(info["peer_id"], bool(info.get("polite", True)))
            if self.auto_negotiate:
                self._spawn(link.negotiate())

    def _link(self, remote_id: str, polite: bool) -> PeerLink:
        link = self.links.get(remote_id)
        if link is None:
            link = PeerLink(
                remote_id,
                polite=polite,
                ice_servers=self.ice_servers,
                send=self._send_signal,
                label=self.label,
                make_tracks=self.make_tracks,
                relay_only=self.relay_only,
            )
            self.links[remote_id] = link
            self._linked.set()
        return link

    async def first_link(self) -> PeerLink:
        """The first peer link, once there is one."""
        while not self.links:
            self._linked.clear()
            await self._linked.wait()
        return next(iter(self.links.values()))

    async def _on_connect(self) -> None:
        if not self._connected_once:
            self._connected_once = True
            return
        if self.room is None or self.peer_id is None:
            return
        ack = await self.call("join", {"room": self.room, "resume": self.peer_id})
        self.events.append(("resume", ack))
        if not ack.get("ok"):
            logger.warning("%s: resume refused: %s", self.label, ack)
            return
        self.resumes += 1
        if not ack.get("resumed"):
            # Held too long: a new identity, so every call starts again.
            await self._close_links()
            self.peer_id = ack["peer_id"]
            self._meet(ack.get("peers", []))
        else:
            for link in list(self.links.values()):
                if link.state in ("failed", "closed", "disconnected"):
                    self._spawn(link.restart())
        self.resumed.set()

    async def _on_peer_joined(self, data: dict[str, Any]) -> None:
        self.events.append(("peer-joined", data))
        self._link(data["peer_id"], bool(data.get("polite", False)))

    async def _on_admitted(self, data: dict[str, Any]) -> None:
        self.events.append(("admitted", data))
        self._meet(data.get("peers", []))

    async def _on_peer_left(self, data: dict[str, Any]) -> None:
        self.events.append(("peer-left", data))
        link = self.links.pop(data.get("peer_id", ""), None)
        if link is not None:
            await link.close()

    async def _on_signal(self, data: dict[str, Any]) -> None:
        self.events.append(("signal", {k: v for k, v in data.items() if k != "description"}))
        sender = data.get("from")
        if isinstance(sender, str):
            await self._link(sender, True).on_signal(data)

    # teardown and tests

    async def drop_socket(self) -> None:
        """Cut the websocket without a goodbye, as a failing network would."""
        ws = self.sio.eio.ws
        if ws is not None:
            await ws.close()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close_links(self) -> None:
        links = list(self.links.values())
        self.links.clear()
        await asyncio.gather(*(link.close() for link in links))

    async def close(self) -> None:
        """Disconnect and close every peer connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_links()
        if self.room is not None and self.sio.connected:
            # Say goodbye explicitly: a bare disconnect looks like a network drop to the
            # server, which would hold our place for the grace period.
            try:
                await self.call("leave", {"room": self.room}, wait_seconds=2)
            except (socketio.exceptions.SocketIOError, TimeoutError):
                logger.info("%s: leave not acknowledged; the grace period will expire", self.label)
        await self.sio.shutdown()
