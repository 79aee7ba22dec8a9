"""Forwarding encoded media: pass-through receive, packet fan-out, keyframe relay, bounded queues.

aiortc's ``RTCRtpReceiver`` reassembles each encoded frame on the event loop and puts it on a
queue that its decoder thread reads. :func:`tap_receiver` puts a queue of ours in that one
receiver's place, so its frames come out as ``av.Packet``\\ s on the loop instead of being
decoded; every other receiver of the process still decodes (environment.md: patching
``aiortc.rtcrtpreceiver.get_decoder`` would stop them all). A :class:`PacketHub` hands each
packet to the :class:`ForwardTrack` of every viewer; a viewer's ``RTCRtpSender`` then only
re-packetises it (the path ``MediaPlayer(decode=False)`` takes).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections import deque
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

logger = logging.getLogger(__name__)

VIDEO_TIME_BASE = Fraction(1, 90000)
AUDIO_TIME_BASE = Fraction(1, 48000)

#: ``on_packet(packet)``, called on the event loop for each reassembled frame.
PacketSink = Callable[[av.Packet], None]


def is_keyframe(mime: str, data: bytes) -> bool:
    """Whether an encoded frame can be decoded on its own (audio frames always can)."""
    mime = mime.lower()
    if mime == "video/vp8":
        # RFC 6386 9.1: the first bit of the frame tag is 0 for a key frame.
        return bool(data) and not data[0] & 0x01
    if mime == "video/h264":
        # aiortc's depayloader writes Annex B: look for an IDR slice or a sequence parameter set.
        index = data.find(b"\x00\x00\x01")
        while index != -1 and index + 3 < len(data):
            if data[index + 3] & 0x1F in (5, 7):
                return True
            index = data.find(b"\x00\x00\x01", index + 3)
        return False
    return True


class _PassThroughQueue(queue.Queue[Any]):
    """Takes the place of one receiver's decoder queue: frames go to ``on_frame`` on the event
    loop (where the receiver puts them); ``None`` (the receiver stopping) still ends its
    decoder thread, which then ends the receiver's track."""

    def __init__(self, original: queue.Queue[Any], on_frame: Callable[[Any, Any], None]) -> None:
        super().__init__()
        self._original = original
        self._on_frame = on_frame

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            # The thread reads whichever queue it was started with (ours when tapped before
            # the connection came up, the original otherwise): end it either way.
            super().put(None)
            self._original.put(None)
            return
        codec, frame = item
        try:
            self._on_frame(codec, frame)
        except Exception:  # never into aiortc's RTP handler: it would drop the connection's data
            logger.exception("forwarding a frame failed")


def tap_receiver(receiver: RTCRtpReceiver, on_packet: PacketSink) -> None:
    """Hand ``receiver``'s reassembled frames to ``on_packet`` as ``av.Packet``s instead of
    decoding them (call before or after the connection comes up)."""
    attr = "_RTCRtpReceiver__decoder_queue"

    def on_frame(codec: Any, frame: Any) -> None:
        mime = codec.mimeType
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.dts = frame.timestamp
        video = mime.lower().startswith("video/")
        packet.time_base = VIDEO_TIME_BASE if video else AUDIO_TIME_BASE
        packet.is_keyframe = is_keyframe(mime, frame.data)
        on_packet(packet)

    setattr(receiver, attr, _PassThroughQueue(getattr(receiver, attr), on_frame))


def media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC the presenter sends media on (not its retransmission SSRC), once seen."""
    rtx = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {})
    for source in receiver.getSynchronizationSources():
        if source.source not in rtx:
            return source.source
    return None


def cap_remb(receiver: RTCRtpReceiver, ceiling: int) -> Callable[[], int | None]:
    """Clamp the bandwidth estimates ``receiver`` sends to the presenter (REMB) to ``ceiling``
    bit/s: aiortc and Chromium set their encoder's target from it. Returns a function giving
    the last estimate sent (``None`` before the first)."""
    original: Callable[[Any], Awaitable[None]] = receiver._send_rtcp
    last: list[int] = []

    async def send(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                pass
            else:
                bitrate = min(bitrate, ceiling)
                packet.fci = pack_remb_fci(bitrate, ssrcs)
                last[:] = [bitrate]
        await original(packet)

    receiver._send_rtcp = send  # type: ignore[method-assign]
    return lambda: last[0] if last else None


async def send_remb(receiver: RTCRtpReceiver, bitrate: int, ssrc: int) -> None:
    """Tell the presenter to send at most ``bitrate`` bit/s on ``ssrc``."""
    rtcp_ssrc = getattr(receiver, "_RTCRtpReceiver__rtcp_ssrc", None)
    if rtcp_ssrc is None:
        return
    await receiver._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                                             fci=pack_remb_fci(bitrate, [ssrc])))


class KeyframeRequester:
    """Coalesces keyframe requests: at most one per ``min_interval`` seconds; a request inside
    the interval is sent when it ends (so a late joiner still gets its keyframe soon)."""

    def __init__(self, send: Callable[[], Awaitable[bool]], min_interval: float) -> None:
        self._send = send
        self._min_interval = min_interval
        self._last = -float("inf")
        self._pending: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self._closed = False

    def request(self) -> None:
        """Ask for a keyframe now or at the end of the current interval."""
        if self._closed or self._pending is not None:
            return
        wait = self._last + self._min_interval - time.monotonic()
        loop = asyncio.get_running_loop()
        if wait <= 0:
            self._fire()
        else:
            self._pending = loop.call_later(wait, self._fire)

    def _fire(self) -> None:
        self._pending = None
        if self._closed:
            return
        self._last = time.monotonic()
        task = asyncio.get_running_loop().create_task(self._run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        try:
            if await self._send():
                self.sent += 1
        except Exception:
            logger.exception("a keyframe request failed")

    async def close(self) -> None:
        """Cancel a pending request; idempotent."""
        self._closed = True
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class PacketHub:
    """One stream of encoded packets (a layer of video, or audio) and whoever takes it: the
    viewers' tracks (bounded queues) and listeners (recorder, low-layer encoder)."""

    def __init__(self, kind: str, request_keyframe: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self.tracks: set[ForwardTrack] = set()
        self.listeners: list[PacketSink] = []
        self._request_keyframe = request_keyframe
        self.packets = 0

    def push(self, packet: av.Packet) -> None:
        """Give ``packet`` to every track and listener (on the event loop)."""
        self.packets += 1
        for track in list(self.tracks):
            track.offer(packet)
        for listener in list(self.listeners):
            listener(packet)

    def request_keyframe(self) -> None:
        """A viewer needs a picture it can decode from."""
        if self._request_keyframe is not None:
            self._request_keyframe()


class ForwardTrack(MediaStreamTrack):
    """A viewer's track: ``recv()`` returns the hub's ``av.Packet``s, from a queue of at most
    ``capacity``. A video viewer that falls that far behind loses its backlog and waits for
    the next keyframe (asking for one) rather than growing memory or delaying the others; a
    new (or switched) video viewer starts at a keyframe."""

    def __init__(self, kind: str, capacity: int) -> None:
        super().__init__()
        self.kind = kind
        self.capacity = max(1, capacity)
        self.hub: PacketHub | None = None
        self._queue: deque[av.Packet] = deque()
        self._ready = asyncio.Event()
        self.waiting_keyframe = kind == "video"
        self.forwarded = 0
        self.dropped = 0
        self.overflows = 0  # times the backlog was thrown away
        self.first_packet_at: float | None = None

    def attach(self, hub: PacketHub) -> None:
        """Take packets from ``hub`` from now on (a layer switch), starting at a keyframe."""
        if self.hub is hub:
            return
        self.detach()
        self.hub = hub
        hub.tracks.add(self)
        if self.kind == "video":
            self.dropped += len(self._queue)
            self._queue.clear()
            self.waiting_keyframe = True
            hub.request_keyframe()

    def detach(self) -> None:
        if self.hub is not None:
            self.hub.tracks.discard(self)
            self.hub = None

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def offer(self, packet: av.Packet) -> None:
        """Queue ``packet`` unless this viewer must wait for a keyframe or is too far behind."""
        if self.readyState != "live":
            return
        video = self.kind == "video"
        if video and self.waiting_keyframe:
            if not packet.is_keyframe:
                self.dropped += 1
                return
            self.waiting_keyframe = False
        if len(self._queue) >= self.capacity:
            self.overflows += 1
            if video:
                self.dropped += len(self._queue)
                self._queue.clear()
                if not packet.is_keyframe:
                    self.dropped += 1
                    self.waiting_keyframe = True
                    if self.hub is not None:
                        self.hub.request_keyframe()
                    return
            else:
                self._queue.popleft()
                self.dropped += 1
        self._queue.append(packet)
        self._ready.set()

    def request_keyframe(self) -> None:
        """The viewer reported picture loss (PLI/FIR on its sender)."""
        if self.hub is not None:
            self.hub.request_keyframe()

    async def recv(self) -> av.Packet:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        if self.first_packet_at is None:
            self.first_packet_at = time.monotonic()
        self.forwarded += 1
        return self._queue.popleft()

    def stop(self) -> None:
        super().stop()
        self.detach()
        self._queue.clear()
        self._ready.set()
