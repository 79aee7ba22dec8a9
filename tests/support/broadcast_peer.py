"""aiortc presenter and viewer peers for teaching broadcasts (tests and benchmarks).

Both are plain peer connections that hand their descriptions to whoever carries them: the
``Broadcast`` object directly, or the ``/rtc`` namespace through ``RtcClient``.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from tests.support.rtc_peer import SyntheticVideoTrack


class BroadcastPresenter:
    """Sends synthetic video (640x480 by default) and silence; sendonly."""

    def __init__(self, *, width: int = 640, height: int = 480, audio: bool = True,
                 codec: str | None = None,
                 ice_servers: list[RTCIceServer] | None = None) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=list(ice_servers or [])))
        self.video = SyntheticVideoTrack(width, height)
        transceiver = self.pc.addTransceiver(self.video, direction="sendonly")
        if codec is not None:
            from aiortc import RTCRtpSender

            caps = RTCRtpSender.getCapabilities("video")
            transceiver.setCodecPreferences(
                [c for c in caps.codecs if c.mimeType.lower() == codec.lower()
                 and (codec.lower() != "video/h264"
                      or c.parameters.get("packetization-mode") == "1")][:1])
        self.video_sender = transceiver.sender
        if audio:
            self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")

    async def offer(self) -> RTCSessionDescription:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription

    async def accept(self, answer: RTCSessionDescription) -> None:
        await self.pc.setRemoteDescription(answer)

    @property
    def target_bitrate(self) -> int | None:
        """The presenter's video encoder's current target, bit/s (once it encodes)."""
        encoder = getattr(self.video_sender, "_RTCRtpSender__encoder", None)
        return getattr(encoder, "target_bitrate", None)

    async def close(self) -> None:
        await self.pc.close()


class BroadcastViewer:
    """Receives and decodes what the relay sends; counts frames and their sizes.

    ``loss`` drops that fraction of incoming video RTP packets (a lossy link, seeded); the
    retransmissions they ask for get through, as aiortc's receiver stalls for seconds on a
    frame it never completes."""

    def __init__(self, name: str = "viewer", *, loss: float = 0.0, read: bool = True,
                 ice_servers: list[RTCIceServer] | None = None) -> None:
        self.name = name
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=list(ice_servers or [])))
        self.read = read
        self.loss = loss
        self._random = random.Random(name)
        self.frames = 0
        self.audio_frames = 0
        self.frame_times: list[float] = []
        self.sizes: set[tuple[int, int]] = set()
        self.last_size: tuple[int, int] | None = None
        self.first_frame = asyncio.Event()
        self.first_frame_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            if self.read:
                task = asyncio.ensure_future(self._consume(track))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def answer(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        await self.pc.setRemoteDescription(offer)
        if self.loss:
            self._lossy()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription

    def _lossy(self) -> None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind != "video":
                continue
            receiver = transceiver.receiver
            original = receiver._handle_rtp_packet
            media = {c.payloadType for c in transceiver._codecs
                     if c.mimeType.lower() != "video/rtx"}

            async def handle(packet: Any, arrival_time_ms: int, original: Any = original,
                             media: set[int] = media) -> None:
                if packet.payload_type in media and self._random.random() < self.loss:
                    return
                await original(packet, arrival_time_ms)

            receiver._handle_rtp_packet = handle  # type: ignore[method-assign]

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame: Any = await track.recv()
            except Exception:
                return
            if track.kind != "video":
                self.audio_frames += 1
                continue
            now = time.monotonic()
            self.frames += 1
            self.frame_times.append(now)
            self.last_size = (frame.width, frame.height)
            self.sizes.add(self.last_size)
            if self.first_frame_at is None:
                self.first_frame_at = now
                self.first_frame.set()

    def fps(self, seconds: float = 2.0) -> float:
        """Frames per second over the last ``seconds``."""
        now = time.monotonic()
        return sum(1 for t in self.frame_times if t >= now - seconds) / seconds

    async def close(self) -> None:
        await self.pc.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class TeachingClient:
    """A ``/rtc`` socket in a teaching room: presents (``publish``) or watches (``watch``)
    through the relay ``sfu``, and records every event it receives."""

    def __init__(self, base_url: str, token: str, label: str = "teaching") -> None:
        import socketio

        self.base_url, self.token, self.label = base_url, token, label
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.room: str | None = None
        self.peer_id: str | None = None
        self.presenter: BroadcastPresenter | None = None
        self.viewer: BroadcastViewer | None = None
        self._offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        for event in ("broadcast", "viewers", "layer", "chat", "answered", "room-closed",
                      "peer-joined", "peer-left"):
            self.sio.on(event, self._recorder(event), namespace="/rtc")
        self.sio.on("signal", self._on_signal, namespace="/rtc")

    def _recorder(self, event: str) -> Any:
        async def record(data: Any) -> None:
            self.events.append((event, data))

        return record

    def seen(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def connect(self) -> None:
        await self.sio.connect(self.base_url, namespaces=["/rtc"], auth={"token": self.token},
                               transports=["websocket"], wait_timeout=10)

    async def call(self, event: str, data: Any, wait_seconds: float = 15) -> Any:
        return await self.sio.call(event, data, namespace="/rtc", timeout=wait_seconds)

    async def join(self, room: str) -> dict[str, Any]:
        ack = await self.call("join", {"room": room})
        if ack.get("ok"):
            self.room, self.peer_id = room, ack["peer_id"]
        return ack

    async def _on_signal(self, data: dict[str, Any]) -> None:
        self.events.append(("signal", {k: v for k, v in data.items() if k != "description"}))
        description = data.get("description")
        if data.get("from") != "sfu" or not isinstance(description, dict):
            return
        if description.get("type") == "answer":
            await self._answers.put(description)
        elif description.get("type") == "offer":
            await self._offers.put(description)

    async def publish(self, presenter: BroadcastPresenter | None = None) -> dict[str, Any]:
        """Send the presenter's offer to ``sfu``; returns the ack and applies the answer."""
        self.presenter = presenter or self.presenter or BroadcastPresenter()
        offer = await self.presenter.offer()
        ack = await self.call("signal", {"to": "sfu", "room": self.room,
                                         "description": {"type": "offer", "sdp": offer.sdp}})
        if ack.get("ok"):
            answer = await asyncio.wait_for(self._answers.get(), 15)
            await self.presenter.accept(RTCSessionDescription(answer["sdp"], "answer"))
        return ack

    async def watch(self, layer: str | None = None) -> dict[str, Any]:
        """Subscribe and answer the relay's offer with a fresh decoding viewer."""
        request: dict[str, Any] = {"room": self.room}
        if layer is not None:
            request["layer"] = layer
        ack = await self.call("subscribe", request)
        if not ack.get("ok"):
            return ack
        offer = await asyncio.wait_for(self._offers.get(), 15)
        if self.viewer is not None:
            await self.viewer.close()
        self.viewer = BroadcastViewer(self.label)
        answer = await self.viewer.answer(RTCSessionDescription(offer["sdp"], "offer"))
        reply = await self.call("signal", {"to": "sfu", "room": self.room,
                                           "description": {"type": "answer",
                                                           "sdp": answer.sdp}})
        assert reply.get("ok"), reply
        return ack

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        if self.presenter is not None:
            await self.presenter.close()
        if self.viewer is not None:
            await self.viewer.close()
