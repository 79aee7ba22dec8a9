"""The broadcast viewers' RTP sending: each frame packetised once, each viewer writes a header.

aiortc's ``RTCRtpSender._run_rtp`` re-packetises every forwarded frame for every viewer
(``encoder.pack``), builds an ``RtpPacket`` per packet with its header extensions, reads the
NTP clock per packet and serialises it: at 10 viewers that was most of the relay's 0.25 core.
:func:`lean_sender` replaces, on *one* sender (a broadcast viewer's; no other sender of the
process is touched), that loop and its retransmission answer:

- a frame (the ``av.Packet`` the viewer's ``ForwardTrack`` hands out, the same object for every
  viewer of a layer) is split into RTP payloads once per process (:class:`FramePacker`,
  cached by packet) and shared by all viewers;
- per viewer and frame, the header extensions (its negotiated ``mid`` and ``abs-send-time``
  ids) are serialised once, and per packet only the 12-byte header (its SSRC, sequence number,
  timestamp with its own random origin, payload type, marker) is written in front;
- the sender's own bookkeeping stays aiortc's: packet and octet counts and the last NTP/RTP
  timestamp pair feed its RTCP sender reports and ``getStats``; the retransmission history
  answers NACKs (RTX when negotiated, as aiortc wraps it); PLI/FIR still reach
  ``_send_keyframe`` (the broadcast relays them to the presenter).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import weakref
from collections import OrderedDict
from typing import Any

import av
from aiortc import RTCRtpSender, clock
from aiortc.codecs import get_encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions
from aiortc.utils import random32, uint16_add, uint32_add

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!BBHLL")
_SEQ = struct.Struct("!H")
_EXTENSION = struct.Struct("!HH")
_PRIVATE = "_RTCRtpSender__"
# what aiortc's RTCP task reads for its sender reports (and getStats)
_PACKET_COUNT = _PRIVATE + "packet_count"
_OCTET_COUNT = _PRIVATE + "octet_count"
_NTP_TIMESTAMP = _PRIVATE + "ntp_timestamp"
_RTP_TIMESTAMP = _PRIVATE + "rtp_timestamp"


class FramePacker:
    """RTP payloads of encoded frames of one codec, computed once per frame for every viewer.

    Keyed by the packet object (which the cache holds, so its id cannot be reused while the
    entry lives); a frame evicted before a slow viewer reaches it is simply packed again.
    The VP8 picture id counts packed frames, so every viewer sees it grow as it should.
    """

    def __init__(self, codec: RTCRtpCodecParameters, capacity: int = 256) -> None:
        self._encoder = get_encoder(codec)
        self._capacity = capacity
        self._cache: OrderedDict[int, tuple[av.Packet, list[bytes], int]] = OrderedDict()
        self.packed = 0  # frames actually packetised (a measure of the sharing)

    def pack(self, packet: av.Packet) -> tuple[list[bytes], int]:
        """``(payloads, timestamp)`` of ``packet``, as ``encoder.pack`` gives them."""
        entry = self._cache.get(id(packet))
        if entry is not None and entry[0] is packet:
            return entry[1], entry[2]
        payloads, timestamp = self._encoder.pack(packet)
        self.packed += 1
        self._cache[id(packet)] = (packet, payloads, timestamp)
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return payloads, timestamp


# packers by the stream they pack (a PacketHub: one layer of the broadcast), then MIME type
_packers: weakref.WeakKeyDictionary[Any, dict[str, FramePacker]] = weakref.WeakKeyDictionary()


def packer_for(codec: RTCRtpCodecParameters, source: Any) -> FramePacker:
    """The packer of ``source``'s frames in ``codec``'s MIME type (payloading does not depend
    on the payload type or the viewer).

    One per source, never one per process: the VP8 picture id counts the frames a packer
    packs, and a viewer must see it grow by one from frame to frame of its layer. A packer
    shared by the two layers interleaved their frames' ids, every viewer saw a gap at every
    frame and Chromium stopped decoding after the first second (it waits for the missing
    pictures). A viewer that switches layers does so at a keyframe, where a jump is allowed.
    """
    mime = codec.mimeType.lower()
    by_mime = _packers.get(source)
    if by_mime is None:
        by_mime = _packers[source] = {}
    packer = by_mime.get(mime)
    if packer is None:
        packer = by_mime[mime] = FramePacker(codec)
    return packer


class LeanSender:
    """The RTP side of one viewer's ``RTCRtpSender`` (see the module's docstring)."""

    def __init__(self, sender: RTCRtpSender) -> None:
        self.sender = sender
        # (sequence number, marker|0, timestamp, extension block, payload) by seq % size
        self._history: dict[int, tuple[int, int, int, bytes, bytes]] = {}
        self._rtx_sequence = random_sequence_number()
        self._payload_type = 0  # the media payload type, once sending

    def _get(self, name: str) -> Any:
        return getattr(self.sender, _PRIVATE + name)

    def _set(self, name: str, value: Any) -> None:
        setattr(self.sender, _PRIVATE + name, value)

    async def run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        """Takes the place of ``RTCRtpSender._run_rtp`` (same start/exit protocol)."""
        sender = self.sender
        self._get("rtp_started").set()
        extensions_map = self._get("rtp_header_extensions_map")
        mid = self._get("mid")
        own = FramePacker(codec)  # for a track without a hub (not a ForwardTrack)
        assert codec.payloadType is not None  # negotiated before send() starts this loop
        payload_type = self._payload_type = codec.payloadType
        sequence = random_sequence_number()
        origin = random32()
        history = self._history
        packets = self._get("packet_count")
        octets = self._get("octet_count")
        try:
            while True:
                track = sender.track
                if track is None:
                    await asyncio.sleep(0.02)
                    continue
                frame = await track.recv()
                if not sender._enabled or not isinstance(frame, av.Packet):
                    continue  # a ForwardTrack hands out packets only
                hub = getattr(track, "hub", None)
                packer = own if hub is None else packer_for(codec, hub)
                payloads, timestamp = packer.pack(frame)
                if not payloads:
                    continue
                timestamp = uint32_add(origin, timestamp)
                ntp = clock.current_ntp_time()
                values = HeaderExtensions()
                values.mid = mid
                values.abs_send_time = (ntp >> 14) & 0x00FFFFFF
                profile, value = extensions_map.set(values)
                if value:
                    block = _EXTENSION.pack(profile, len(value) >> 2) + value
                    first = 0x90  # version 2, extension bit
                else:
                    block, first = b"", 0x80
                ssrc = sender._ssrc
                transport = sender.transport
                last = len(payloads) - 1
                for i, payload in enumerate(payloads):
                    marker = 0x80 if i == last else 0
                    history[sequence % RTP_HISTORY_SIZE] = (sequence, marker, timestamp,
                                                            block, payload)
                    await transport._send_rtp(
                        _HEADER.pack(first, marker | payload_type, sequence, timestamp, ssrc)
                        + block + payload)
                    packets += 1
                    octets += len(payload)
                    sequence = uint16_add(sequence, 1)
                    # after each packet, as aiortc does: a sender report may go out between
                    # two packets of a frame
                    setattr(sender, _PACKET_COUNT, packets)
                    setattr(sender, _OCTET_COUNT, octets)
                    setattr(sender, _NTP_TIMESTAMP, ntp)
                    setattr(sender, _RTP_TIMESTAMP, timestamp)
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            # RTCRtpSender.stop() waits for the exit flag: never leave without setting it
            logger.exception("a viewer's RTP sending failed")
        track = sender.track
        if track is not None:
            track.stop()
            self._set("track", None)
        self._get("rtp_exited").set()

    async def retransmit(self, sequence_number: int) -> None:
        """Takes the place of ``RTCRtpSender._retransmit``: answers a NACK from the history,
        wrapped as RTX (RFC 4588: original sequence number first) when RTX was negotiated."""
        entry = self._history.get(sequence_number % RTP_HISTORY_SIZE)
        if entry is None or entry[0] != sequence_number:
            return
        sequence, marker, timestamp, block, payload = entry
        first = 0x90 if block else 0x80
        rtx_payload_type: int | None = self._get("rtx_payload_type")
        sender = self.sender
        if rtx_payload_type is not None:
            data = (_HEADER.pack(first, marker | rtx_payload_type, self._rtx_sequence,
                                 timestamp, sender._rtx_ssrc)
                    + block + _SEQ.pack(sequence) + payload)
            self._rtx_sequence = uint16_add(self._rtx_sequence, 1)
        else:
            data = (_HEADER.pack(first, marker | self._payload_type, sequence, timestamp,
                                 sender._ssrc) + block + payload)
        await sender.transport._send_rtp(data)


def lean_sender(sender: RTCRtpSender) -> LeanSender:
    """Make ``sender`` (a broadcast viewer's, before its connection is negotiated) send
    forwarded frames the lean way. Only this sender changes."""
    lean = LeanSender(sender)
    sender._run_rtp = lean.run_rtp  # type: ignore[method-assign]
    sender._retransmit = lean.retransmit  # type: ignore[method-assign]
    return lean
