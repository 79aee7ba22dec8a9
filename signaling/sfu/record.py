"""Recording a broadcast without re-encoding: the forwarded packets muxed into one file.

The broadcast already holds the presenter's encoded video and audio as ``av.Packet`` objects
(aiortc's receiver reassembles them from RTP, ``pts`` in RTP clock units). Decoding and
encoding them again would cost as much as one more viewer on the stock relay, so PyAV only
muxes them: VP8 goes to WebM (what Chromium's ``<video>`` plays), H.264 to Matroska (WebM
allows no H.264), Opus audio beside either.

``write_video``/``write_audio`` run on the event loop and only put the packet on a bounded
queue; one writer thread per recording does everything that touches the file, because a
write can block for as long as the disk likes. When the queue is full (the disk is slower
than the broadcast) packets are dropped, and video then skips to the next keyframe so the
file never holds frames whose reference is missing. A failing disk ends the recording with
``ok=False``; nothing is raised into the broadcast, and what was written stays on disk.

Timestamps: RTP clocks start at random values, wrap at 2**32 and jump when the presenter's
encoder restarts. Each stream is anchored at the arrival time of its first packet, relative
to the first video keyframe (the recording's time zero), then follows its own RTP clock; a
stream whose clock drifts more than ``RESYNC_S`` from the arrival clock (a jump, a restart)
is re-anchored. Output timestamps are milliseconds (Matroska's unit), strictly increasing
per stream; a repeated video timestamp is a duplicate frame and is dropped.
"""

from __future__ import annotations

import asyncio
import io
import logging
import queue
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av

logger = logging.getLogger(__name__)

QUEUE_PACKETS = 900
"""Backlog the writer may fall behind by: about 10 s of 30 fps video with 50 Opus packets/s."""

RESYNC_S = 2.0
"""Distance between a stream's RTP clock and its arrival clock that counts as a jump."""

MS = Fraction(1, 1000)
_CONTAINERS = {"video/vp8": "webm", "video/h264": "mkv"}
_FORMATS = {"webm": "webm", "mkv": "matroska"}
_STOP = object()


@dataclass(frozen=True)
class RecordingResult:
    """What ``Recorder.close`` leaves behind; ``ok`` is False when the file is missing,
    empty of video or was cut short by a write error (it may still be partly playable)."""

    path: Path
    duration_s: float
    size: int
    ok: bool


@dataclass
class _Item:
    kind: str  # "video" | "audio"
    packet: av.Packet
    pts: int
    rate: int  # clock rate of pts (from the packet's time_base)
    keyframe: bool
    arrival: float  # time.monotonic() when the broadcast handed it over


class _Clock:
    """One stream's timestamps: RTP clock unwrapped and mapped onto recording milliseconds."""

    def __init__(self) -> None:
        self.last_raw: int | None = None
        self.unwrapped = 0
        self.anchor_pts = 0
        self.anchor_ms = 0
        self.last_ms = -1

    def place(self, raw: int, rate: int, arrival_ms: int) -> int | None:
        """The packet's time in ms, or None for a duplicate of the previous packet."""
        if self.last_raw is None:
            self.unwrapped = raw
            self.anchor_pts, self.anchor_ms = raw, max(arrival_ms, self.last_ms + 1)
        else:
            # A signed 32-bit step survives the RTP timestamp's wrap-around.
            step = ((raw - self.last_raw + 2**31) % 2**32) - 2**31
            if step == 0:
                return None
            self.unwrapped += step
        self.last_raw = raw
        ms = self.anchor_ms + (self.unwrapped - self.anchor_pts) * 1000 // rate
        if abs(ms - arrival_ms) > RESYNC_S * 1000:
            self.anchor_pts, self.anchor_ms = self.unwrapped, max(arrival_ms, self.last_ms + 1)
            ms = self.anchor_ms
        ms = max(ms, self.last_ms + 1)  # reordered or too close: keep dts increasing
        self.last_ms = ms
        return ms


def is_keyframe(mime: str, packet: av.Packet) -> bool:
    """Whether the packet starts a picture decodable on its own, read from the bitstream
    because a packet built from RTP payload carries no keyframe flag unless its maker set one."""
    if packet.is_keyframe:
        return True
    if packet.size == 0:
        return False
    if mime == "video/vp8":
        return memoryview(packet)[0] & 0x01 == 0  # frame tag: P bit clear is a key frame
    return 5 in _nal_types(bytes(packet))  # H.264: an IDR slice


def _nal_types(data: bytes) -> set[int]:
    """NAL unit types of an Annex B access unit (the form aiortc's depayloader produces)."""
    return {unit[0] & 0x1F for unit in _nal_units(data) if unit}


def _nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit, without their start codes."""
    units = []
    i = data.find(b"\x00\x00\x01")
    while i != -1:
        start = i + 3
        i = data.find(b"\x00\x00\x01", start)
        end = len(data) if i == -1 else i
        units.append(data[start:end].rstrip(b"\x00") if i != -1 else data[start:end])
    return units


def _parameter_sets(data: bytes) -> bytes:
    """The SPS and PPS of an H.264 access unit, in Annex B form (empty when it has none)."""
    return b"".join(b"\x00\x00\x00\x01" + unit for unit in _nal_units(data)
                    if unit and unit[0] & 0x1F in (7, 8))


def _video_template(mime: str, keyframe: bytes) -> av.container.InputContainer:
    """A one-frame input container whose stream describes the video as the muxer needs it.

    Matroska wants width, height and, for H.264, the SPS/PPS as CodecPrivate (avcC); a
    forwarded stream has no extradata, they are in-band in the keyframe. Probing that
    keyframe lets FFmpeg extract them; the muxer then also rewrites the in-band Annex B
    packets into the length-prefixed form Matroska stores. VP8's size is in its keyframe
    header, which the IVF demuxer needs wrapped in IVF's file and frame headers.
    """
    if mime == "video/h264":
        return av.open(io.BytesIO(keyframe), "r", format="h264")
    width = int.from_bytes(keyframe[6:8], "little") & 0x3FFF
    height = int.from_bytes(keyframe[8:10], "little") & 0x3FFF
    header = struct.pack("<4sHH4sHHIIII", b"DKIF", 0, 32, b"VP80", width, height, 30, 1, 1, 0)
    frame = struct.pack("<IQ", len(keyframe), 0)
    return av.open(io.BytesIO(header + frame + keyframe), "r", format="ivf")


class Recorder:
    """Mux forwarded packets into ``path`` from a writer thread; see the module docstring."""

    def __init__(self, path: Path, video_mime: str | None, audio_mime: str | None,
                 queue_packets: int = QUEUE_PACKETS) -> None:
        vmime = video_mime.lower() if video_mime else None
        amime = audio_mime.lower() if audio_mime else None
        if vmime is not None and vmime not in _CONTAINERS:
            raise ValueError(f"cannot record video {video_mime!r} (VP8 or H.264 only)")
        if amime not in (None, "audio/opus"):
            if vmime is None:
                raise ValueError(f"cannot record audio {audio_mime!r} (Opus only)")
            # WebM and this muxer take Opus only: a presenter on G.711 is recorded silent
            # rather than not at all.
            logger.warning("recording %s without its %s audio (Opus only)", path, audio_mime)
            amime = None
        if vmime is None and amime is None:
            raise ValueError("nothing to record: neither video nor audio")
        self.path = Path(path)
        self.video_mime = vmime
        self.audio_mime = amime
        self.container: str = _CONTAINERS[vmime] if vmime else "webm"
        self.dropped = 0  # packets lost to a full queue, and video after them to a keyframe
        self.before_start = 0  # packets before the first video keyframe (nothing to show yet)
        self.duplicates = 0
        self.error: str | None = None
        #: set by the broadcast: asks the presenter for a keyframe (throttled there) when
        #: video was dropped and the file waits for one
        self.want_keyframe: Callable[[], None] | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_packets)
        self._skip_to_keyframe = False  # event loop side: a video packet was dropped
        self._closed = False
        self._result: RecordingResult | None = None
        self._close_lock = asyncio.Lock()
        # Written only by the writer thread, read after it has ended.
        self._out: av.container.OutputContainer | None = None
        self._file: BinaryIO | None = None
        self._streams: dict[str, Any] = {}
        self._clocks = {"video": _Clock(), "audio": _Clock()}
        self._origin: float | None = None
        self._parameter_sets = b""  # H.264 SPS/PPS seen before the first keyframe
        self._first_ms: dict[str, int] = {}
        self._end_ms: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name=f"recorder {self.path.name}",
                                        daemon=True)
        self._thread.start()

    # Event loop side -------------------------------------------------------------------

    def write_video(self, packet: av.Packet) -> None:
        """Queue one reassembled video frame; never blocks (drops to the next keyframe when
        the writer is behind)."""
        if self._closed or self.video_mime is None or packet.pts is None:
            return
        keyframe = is_keyframe(self.video_mime, packet)
        if self._skip_to_keyframe and not keyframe:
            self.dropped += 1
            return
        if self._offer(_Item("video", packet, packet.pts, _rate(packet, 90000), keyframe,
                             time.monotonic())):
            self._skip_to_keyframe = False
        elif not self._skip_to_keyframe:
            self._skip_to_keyframe = True
            if self.want_keyframe is not None:
                # A browser presenter sends keyframes only when asked: without this the
                # file could wait minutes for the next one.
                self.want_keyframe()

    def write_audio(self, packet: av.Packet) -> None:
        """Queue one Opus packet; never blocks (dropped when the writer is behind)."""
        if self._closed or self.audio_mime is None or packet.pts is None:
            return
        self._offer(_Item("audio", packet, packet.pts, _rate(packet, 48000), False,
                          time.monotonic()))

    def _offer(self, item: _Item) -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    async def close(self) -> RecordingResult:
        """Finish the file and say what it holds; safe to call twice, never raises."""
        async with self._close_lock:
            if self._result is None:
                self._closed = True
                # The queue may be full: the sentinel waits for room in a worker thread.
                await asyncio.to_thread(self._queue.put, _STOP)
                await asyncio.to_thread(self._thread.join)
                self._result = await asyncio.to_thread(self._summary)
            return self._result

    # Writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            if self.error is not None:
                continue  # the file is dead; keep draining so write_* never blocks
            try:
                self._mux(item)
            except Exception as exc:  # noqa: BLE001 - any failure ends the file, never the broadcast
                self._fail(exc)
        self._finish()

    def _mux(self, item: _Item) -> None:
        if self._origin is None:
            # Time zero is the first video keyframe (the first audio packet with no video):
            # earlier video cannot be decoded and earlier audio would play over nothing.
            if self.video_mime is not None and not (item.kind == "video" and item.keyframe):
                if item.kind == "video" and self.video_mime == "video/h264":
                    # SPS/PPS may come ahead of the IDR the file will start at
                    self._parameter_sets = _parameter_sets(bytes(item.packet)) or \
                        self._parameter_sets
                self.before_start += 1
                return
            self._origin = item.arrival
            self._open(item)
        stream = self._streams[item.kind]
        arrival_ms = int((item.arrival - self._origin) * 1000)
        if arrival_ms < 0:
            self.before_start += 1
            return
        ms = self._clocks[item.kind].place(item.pts, item.rate, arrival_ms)
        if ms is None:
            self.duplicates += 1
            return
        # A fresh packet: the broadcast's own packet goes on to the viewers, and muxing
        # rewrites pts, dts, time_base and stream on whatever packet it is given.
        packet = av.Packet(bytes(item.packet))
        packet.pts = packet.dts = ms
        packet.time_base = MS
        packet.is_keyframe = item.keyframe
        packet.stream = stream
        assert self._out is not None
        self._out.mux(packet)
        self._first_ms.setdefault(item.kind, ms)
        self._end_ms[item.kind] = ms + (20 if item.kind == "audio" else 33)

    def _open(self, first: _Item) -> None:
        # Python's file, not FFmpeg's avio_open: PyAV holds the GIL around avio_open and the
        # trailer, so a slow disk there would stall the event loop; Python's I/O releases it.
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in _finish
        out = av.open(self._file, "w", format=_FORMATS[self.container])
        self._out = out
        if self.video_mime is not None:
            keyframe = bytes(first.packet)
            if self.video_mime == "video/h264" and 7 not in _nal_types(keyframe):
                keyframe = self._parameter_sets + keyframe  # the muxer needs them in avcC
            template = _video_template(self.video_mime, keyframe)
            try:
                stream = out.add_stream_from_template(template.streams.video[0])
            finally:
                template.close()
            stream.time_base = MS
            self._streams["video"] = stream
        if self.audio_mime is not None:
            # Opening libopus only yields the OpusHead (CodecPrivate) the WebM muxer and
            # Chromium require; nothing is encoded with it.
            audio = out.add_stream("libopus", rate=48000, layout="stereo")
            audio.time_base = MS
            self._streams["audio"] = audio

    def _fail(self, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        logger.warning("recording %s failed: %s", self.path, self.error)

    def _finish(self) -> None:
        for closing in (self._out, self._file):
            if closing is None:
                continue
            try:
                closing.close()
            except Exception as exc:  # noqa: BLE001 - a failed trailer leaves a partial file
                if self.error is None:
                    self._fail(exc)

    def _summary(self) -> RecordingResult:
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        start = min(self._first_ms.values(), default=0)
        end = max(self._end_ms.values(), default=0)
        wrote_video = "video" in self._first_ms or self.video_mime is None
        ok = self.error is None and wrote_video and bool(self._first_ms)
        return RecordingResult(self.path, round((end - start) / 1000, 3) if end else 0.0,
                               size, ok)


def _rate(packet: av.Packet, default: int) -> int:
    """Clock rate of the packet's pts (aiortc: 90000 for video, 48000 for Opus)."""
    tb = packet.time_base
    if tb is None or tb.numerator != 1:
        return default
    return int(tb.denominator)
