"""The low layer: the presenter's video decoded once, scaled to 320x240 and encoded once for
every viewer whose link cannot carry the full picture.

aiortc has no simulcast, so the server makes the second layer itself. One decoder and one
encoder run in one worker thread (never on the event loop), whatever the number of low
viewers; the packets go out through a :class:`PacketHub` like the presenter's own. The timestamps
stay the presenter's (same 90 kHz clock), so a viewer switched between layers sees one
continuous stream.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from fractions import Fraction
from typing import Any

import av
from aiortc.codecs import get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from yilian.signaling.sfu.forward import VIDEO_TIME_BASE, PacketHub

logger = logging.getLogger(__name__)

LOW_WIDTH, LOW_HEIGHT = 320, 240
#: Frames waiting for the worker; more means the machine cannot keep up: drop, never queue.
_BACKLOG = 4


def _encoder(mime: str, bitrate: int) -> Any:
    """A real-time encoder for ``mime`` at ``bitrate`` bit/s (aiortc's own settings)."""
    if mime.lower() == "video/h264":
        codec = av.CodecContext.create("libx264", "w")
        codec.options = {"level": "31", "tune": "zerolatency", "preset": "ultrafast"}
        codec.profile = "Baseline"
    else:
        codec = av.CodecContext.create("libvpx", "w")
        codec.options = {
            "bufsize": str(bitrate), "cpu-used": "-6", "deadline": "realtime",
            "lag-in-frames": "0", "minrate": str(bitrate), "maxrate": str(bitrate),
            "noise-sensitivity": "4", "overshoot-pct": "15", "partitions": "0",
            "static-thresh": "1", "undershoot-pct": "100",
        }
        codec.qmin, codec.qmax = 2, 56
    codec.width, codec.height = LOW_WIDTH, LOW_HEIGHT
    codec.bit_rate = bitrate
    codec.pix_fmt = "yuv420p"
    codec.framerate = Fraction(30, 1)
    codec.time_base = VIDEO_TIME_BASE
    codec.gop_size = 3000  # keyframes only when a viewer asks
    codec.thread_count = 1
    return codec


class LowLayer:
    """Decode-scale-encode of the presenter's video, fed with its packets, feeding ``hub``."""

    def __init__(self, codec: RTCRtpCodecParameters, bitrate: int,
                 request_source_keyframe: Any) -> None:
        self.codec = codec
        self.bitrate = bitrate
        self.hub = PacketHub("video", self._want_keyframe)
        self._request_source_keyframe = request_source_keyframe
        self._input: queue.Queue[av.Packet | None] = queue.Queue()
        self._force_keyframe = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._synced = False  # the decoder has had a keyframe since it started
        self.frames_in = 0
        self.frames_out = 0
        self.skipped = 0

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start the worker (the first low viewer arrived); it waits for a source keyframe."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._synced = False
        self._input = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="sfu-low-layer", daemon=True)
        self._thread.start()
        self._request_source_keyframe()

    def feed(self, packet: av.Packet) -> None:
        """A packet of the presenter's video (a hub listener, on the loop)."""
        if self._thread is None:
            return
        if not self._synced:
            if not packet.is_keyframe:
                return
            self._synced = True
        if self._input.qsize() >= _BACKLOG:
            # Behind: decoding must restart at a keyframe, or the picture breaks up.
            self.skipped += 1
            self._synced = False
            self._request_source_keyframe()
            return
        self._input.put(packet)

    def _want_keyframe(self) -> None:
        self._force_keyframe.set()

    async def stop(self) -> None:
        """Stop the worker (no low viewer left); idempotent."""
        thread = self._thread
        if thread is None:
            return
        self._thread = None
        self._input.put(None)
        await asyncio.to_thread(thread.join)

    def _work(self) -> None:
        decoder = get_decoder(self.codec)
        encoder = _encoder(self.codec.mimeType, self.bitrate)
        source = self._input
        try:
            while True:
                packet = source.get()
                if packet is None:
                    break
                try:
                    frames = decoder.decode(JitterFrame(bytes(packet), packet.pts or 0))
                except av.FFmpegError as exc:
                    logger.info("low layer: a frame did not decode (%s)", exc)
                    continue
                for frame in frames:
                    assert isinstance(frame, av.VideoFrame)
                    self.frames_in += 1
                    small = frame.reformat(width=LOW_WIDTH, height=LOW_HEIGHT, format="yuv420p")
                    small.pts = packet.pts
                    small.time_base = VIDEO_TIME_BASE
                    if self._force_keyframe.is_set():
                        self._force_keyframe.clear()
                        small.pict_type = av.video.frame.PictureType.I
                    for out in encoder.encode(small):
                        out.pts = packet.pts
                        out.time_base = VIDEO_TIME_BASE
                        self.frames_out += 1
                        self._hand_over(out)
        except Exception:
            logger.exception("the low layer's encoder stopped")

    def _hand_over(self, packet: av.Packet) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self.hub.push, packet)
        except RuntimeError:  # the loop closed under us at shutdown
            pass
