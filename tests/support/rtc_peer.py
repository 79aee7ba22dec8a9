"""One aiortc peer connection to one remote peer, negotiated with the perfect-negotiation pattern.

aiortc has no ``rollback`` description and no ICE restart, so the two places where the
pattern needs them replace the ``RTCPeerConnection`` with a fresh one instead: the polite side
of a glare drops its own pending offer that way, and a peer whose media path died (or that
receives an offer with new ICE credentials) starts over on a new connection. Browsers on the
other end see an ordinary renegotiation with an ICE restart.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.sdp import candidate_from_sdp
from av import VideoFrame

logger = logging.getLogger(__name__)

SendSignal = Callable[[str, dict[str, Any]], Awaitable[None]]
_UFRAG_RE = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)


class SyntheticVideoTrack(VideoStreamTrack):
    """Small grey yuv420p frames at 30 fps: cheap to encode, enough to prove media flows."""

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self.width, self.height = width, height

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self.width, height=self.height, format="yuv420p")
        for plane in frame.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base or fractions.Fraction(1, 90000)
        return frame


def ice_ufrag(sdp: str | None) -> str | None:
    """The first ICE username fragment of an SDP document."""
    match = _UFRAG_RE.search(sdp or "")
    return match.group(1) if match else None


class PeerLink:
    """Media and a data channel with one remote peer; knows whether it is the polite side."""

    def __init__(
        self,
        remote_id: str,
        *,
        polite: bool,
        ice_servers: list[RTCIceServer],
        send: SendSignal,
        label: str = "peer",
        make_tracks: Callable[[], list[MediaStreamTrack]] | None = None,
        relay_only: bool = False,
    ) -> None:
        self.remote_id = remote_id
        self._policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
        self.polite = polite
        self.label = label
        self._ice_servers = ice_servers
        self._send = send
        self._make_tracks = make_tracks or (lambda: [SyntheticVideoTrack()])
        self._making_offer = False
        self._ignore_offer = False
        self._incoming = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.frames_received = 0
        self.messages: list[str] = []
        self.first_frame = asyncio.Event()
        self.message_received = asyncio.Event()
        self.connected = asyncio.Event()
        self.generation = 0
        # Counters that show which branch of perfect negotiation ran (tests assert on them).
        self.ignored_offers = 0
        self.rollbacks = 0
        self.remote_restarts = 0
        self.pc = self._new_pc()

    # connection lifecycle

    def _new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=list(self._ice_servers), iceTransportPolicy=self._policy)
        )
        self.generation += 1
        generation = self.generation
        for track in self._make_tracks():
            pc.addTrack(track)
        channel = pc.createDataChannel("chat", negotiated=True, id=0)

        @channel.on("open")
        def _on_open() -> None:
            channel.send(f"hello from {self.label}")

        @channel.on("message")
        def _on_message(message: Any) -> None:
            self.messages.append(str(message))
            self.message_received.set()

        @pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._spawn(self._consume(track))

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            logger.debug(
                "%s -> %s gen %d: %s", self.label, self.remote_id, generation, pc.connectionState
            )
            if pc is self.pc and pc.connectionState == "connected":
                self.connected.set()

        return pc

    async def _replace_pc(self) -> None:
        """Start over on a fresh connection (stands in for rollback and ICE restart)."""
        old = self.pc
        self.pc = self._new_pc()
        self.connected.clear()
        self.first_frame.clear()
        self._making_offer = False
        await old.close()

    async def _consume(self, track: MediaStreamTrack) -> None:
        generation = self.generation
        while True:
            try:
                await track.recv()
            except Exception:  # MediaStreamError once the connection is replaced or closed
                return
            self.frames_received += 1
            if generation == self.generation:
                self.first_frame.set()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def state(self) -> str:
        return self.pc.connectionState

    # negotiation

    async def negotiate(self) -> None:
        """Send an offer for the current connection (call on join, glare tests, restarts)."""
        pc = self.pc
        self._making_offer = True
        try:
            await pc.setLocalDescription(await pc.createOffer())
        except Exception:
            if pc is self.pc:
                raise
            return  # the connection was replaced (and closed) under us: nothing to send
        finally:
            if pc is self.pc:
                self._making_offer = False
        if pc is not self.pc or pc.localDescription is None:
            return  # a polite rollback replaced this connection while it gathered
        await self._send(self.remote_id, {"description": _description(pc.localDescription)})

    async def restart(self) -> None:
        """The media path died: a new connection and a fresh offer (an ICE restart to the other end)."""
        await self._replace_pc()
        await self.negotiate()

    async def on_signal(self, data: dict[str, Any]) -> None:
        """Handle a ``signal`` from the remote peer, one at a time in arrival order."""
        async with self._incoming:
            if self._closed:
                return
            if "description" in data:
                await self._on_description(data["description"])
            elif "candidate" in data:
                await self._on_candidate(data["candidate"])

    async def _on_description(self, raw: dict[str, Any]) -> None:
        description = RTCSessionDescription(sdp=raw["sdp"], type=raw["type"])
        pc = self.pc
        if description.type == "offer":
            if pc.connectionState in ("closed", "failed") and not self._making_offer:
                # Our side of the media path is dead too: start over and take the offer.
                self.remote_restarts += 1
                await self._replace_pc()
                pc = self.pc
            collision = self._making_offer or pc.signalingState != "stable"
            self._ignore_offer = not self.polite and collision
            if self._ignore_offer:
                self.ignored_offers += 1
                logger.debug(
                    "%s: impolite, ignoring colliding offer from %s", self.label, self.remote_id
                )
                return
            restarted = pc.remoteDescription is not None and ice_ufrag(
                pc.remoteDescription.sdp
            ) != ice_ufrag(description.sdp)
            if collision or restarted:
                self.rollbacks += collision
                self.remote_restarts += restarted and not collision
                await self._replace_pc()
                pc = self.pc
        try:
            await pc.setRemoteDescription(description)
        except Exception as exc:  # a stale answer for a connection that was already replaced
            logger.info(
                "%s: dropped %s from %s: %s", self.label, description.type, self.remote_id, exc
            )
            return
        if description.type == "offer":
            await pc.setLocalDescription(await pc.createAnswer())
            if pc is self.pc and pc.localDescription is not None:
                await self._send(self.remote_id, {"description": _description(pc.localDescription)})

    async def _on_candidate(self, raw: dict[str, Any] | None) -> None:
        if raw is None or not raw.get("candidate"):
            return  # end of candidates; aiortc gathers everything before it answers anyway
        text = raw["candidate"].removeprefix("candidate:")
        try:
            candidate = candidate_from_sdp(text)
            candidate.sdpMid = raw.get("sdpMid")
            candidate.sdpMLineIndex = raw.get("sdpMLineIndex")
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:
            if not self._ignore_offer:
                logger.info("%s: bad candidate from %s: %s", self.label, self.remote_id, exc)

    async def close(self) -> None:
        """Close the connection and stop the frame readers; idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.pc.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _description(description: RTCSessionDescription) -> dict[str, str]:
    return {"type": description.type, "sdp": description.sdp}
