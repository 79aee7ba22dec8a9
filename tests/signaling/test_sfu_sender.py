"""The lean viewer sender (``signaling.sfu.sender``) with real aiortc peers on loopback.

A small relay made of the broadcast's own parts (``forward.tap_receiver``, ``PacketHub``,
``ForwardTrack``) forwards one aiortc presenter (640x480 VP8 + Opus) to decoding aiortc
viewers whose senders are lean; the wire between relay and viewer is watched at the viewer
connection's DTLS transport (every RTP and RTCP packet of the connection passes there).
One presenter and relay serve the whole module.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any

import av
import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtcpPacket, RtcpSrPacket, RtpPacket, is_rtcp

from tests.signaling.conftest import until
from tests.support.broadcast_peer import BroadcastPresenter, BroadcastViewer
from yilian.signaling.sfu.forward import ForwardTrack, PacketHub, media_ssrc, tap_receiver
from yilian.signaling.sfu.sender import FramePacker, LeanSender, lean_sender, packer_for

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Wire:
    """Every packet one viewer connection sends, seen at its DTLS transport (before SRTP);
    ``drop`` holds media sequence numbers to lose once."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.media: list[RtpPacket] = []
        self.rtx: list[RtpPacket] = []
        self.reports: list[tuple[RtcpSrPacket, int, int]] = []  # SR, packets, octets then
        self.drop: set[int] = set()
        self.dropped: list[int] = []
        self.video_pt: int | None = None
        self.rtx_pt: int | None = None
        self.video_ssrc: int | None = None
        transport = pc.getTransceivers()[0].sender.transport
        original = transport._send_rtp

        async def send(data: bytes) -> None:
            if is_rtcp(data):
                for packet in RtcpPacket.parse(data):
                    if isinstance(packet, RtcpSrPacket) and packet.ssrc == self.video_ssrc:
                        self.reports.append((packet, len(self.media),
                                             sum(len(p.payload) for p in self.media)))
            else:
                rtp = RtpPacket.parse(data)
                if rtp.ssrc == self.video_ssrc and rtp.payload_type == self.video_pt:
                    self.media.append(rtp)  # sent, as far as the sender knows
                    if rtp.sequence_number in self.drop:
                        self.drop.discard(rtp.sequence_number)
                        self.dropped.append(rtp.sequence_number)
                        return
                elif rtp.payload_type == self.rtx_pt:
                    self.rtx.append(rtp)
            await original(data)

        transport._send_rtp = send  # type: ignore[method-assign]


class Relay:
    """The presenter's packets fanned out to lean viewer senders (no ``Broadcast``)."""

    def __init__(self) -> None:
        self.video = PacketHub("video", self._keyframe)
        self.audio = PacketHub("audio")
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.receiver: Any = None
        self.keyframe_requests = 0
        self.viewers: list[tuple[RTCPeerConnection, ForwardTrack, LeanSender, Wire]] = []

    def _keyframe(self) -> None:
        self.keyframe_requests += 1
        if self.receiver is not None and media_ssrc(self.receiver) is not None:
            asyncio.ensure_future(self.receiver._send_rtcp_pli(media_ssrc(self.receiver)))

    async def publish(self, presenter: BroadcastPresenter) -> None:
        @self.pc.on("track")
        def on_track(track: Any) -> None:
            for transceiver in self.pc.getTransceivers():
                if transceiver.receiver.track is track:
                    hub = self.video if track.kind == "video" else self.audio
                    tap_receiver(transceiver.receiver, hub.push)
                    if track.kind == "video":
                        self.receiver = transceiver.receiver

        await self.pc.setRemoteDescription(await presenter.offer())
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await presenter.accept(self.pc.localDescription)
        await until(lambda: self.video.packets > 0)

    async def watch(self, viewer: BroadcastViewer) -> tuple[ForwardTrack, LeanSender, Wire]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        video = ForwardTrack("video", 64)
        audio = ForwardTrack("audio", 64)
        caps = RTCRtpSender.getCapabilities("video").codecs
        tx = pc.addTransceiver(video, direction="sendonly")
        tx.setCodecPreferences([c for c in caps if c.mimeType.lower() == "video/vp8"]
                               + [c for c in caps if c.mimeType.lower() == "video/rtx"])
        lean = lean_sender(tx.sender)
        tx.sender._send_keyframe = video.request_keyframe  # type: ignore[method-assign]
        audio_tx = pc.addTransceiver(audio, direction="sendonly")
        lean_sender(audio_tx.sender)
        await pc.setLocalDescription(await pc.createOffer())
        await pc.setRemoteDescription(await viewer.answer(pc.localDescription))
        wire = Wire(pc)
        wire.video_ssrc = tx.sender._ssrc
        for codec in tx._codecs:
            if codec.mimeType.lower() == "video/vp8":
                wire.video_pt = codec.payloadType
            elif codec.mimeType.lower() == "video/rtx":
                wire.rtx_pt = codec.payloadType
        video.attach(self.video)
        audio.attach(self.audio)
        self.viewers.append((pc, video, lean, wire))
        return video, lean, wire

    async def close(self) -> None:
        for pc, video, _, _ in self.viewers:
            video.stop()
            await pc.close()
        await self.pc.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def relay() -> AsyncIterator[Relay]:
    presenter = BroadcastPresenter()
    relay = Relay()
    await relay.publish(presenter)
    yield relay
    await relay.close()
    await presenter.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def viewers(relay: Relay) -> AsyncIterator[list[tuple[BroadcastViewer, Wire]]]:
    """Three decoding viewers of the module's relay."""
    made = []
    for i in range(3):
        viewer = BroadcastViewer(f"lean-{i}")
        _, _, wire = await relay.watch(viewer)
        made.append((viewer, wire))
    await asyncio.gather(*(asyncio.wait_for(v.first_frame.wait(), 10) for v, _ in made))
    yield made
    for viewer, _ in made:
        await viewer.close()


def vp8() -> RTCRtpCodecParameters:
    return RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


async def test_a_frame_is_packetised_once_for_every_viewer() -> None:
    packer = FramePacker(vp8())
    frame = av.Packet(bytes(range(256)) * 20)  # more than one RTP packet's worth
    frame.pts, frame.time_base = 3000, Fraction(1, 90000)
    payloads, timestamp = packer.pack(frame)
    again = packer.pack(frame)
    assert again == (payloads, timestamp) and again[0] is payloads
    assert packer.packed == 1 and len(payloads) > 1 and timestamp == 3000
    other = av.Packet(b"\x00" * 10)
    other.pts, other.time_base = 6000, frame.time_base
    packer.pack(other)
    assert packer.packed == 2


async def test_each_layer_numbers_its_own_pictures() -> None:
    """The two layers' frames interleave; each layer's VP8 picture ids still grow by one per
    frame (a gap makes Chromium wait for pictures that never come)."""
    high, low = PacketHub("video"), PacketHub("video")
    ids: dict[str, list[int]] = {"high": [], "low": []}
    for n in range(40):
        for name, hub in (("high", high), ("low", low)):
            frame = av.Packet(bytes([n % 256]) * 50)
            frame.pts, frame.time_base = 3000 * n, Fraction(1, 90000)
            payloads, _ = packer_for(vp8(), hub).pack(frame)
            descriptor, _ = VpxPayloadDescriptor.parse(payloads[0])
            assert descriptor.picture_id is not None
            ids[name].append(descriptor.picture_id)
    for name, seen in ids.items():
        assert all((b - a) % 0x8000 == 1 for a, b in zip(seen, seen[1:], strict=False)), name
    assert packer_for(vp8(), high) is not packer_for(vp8(), low)


async def test_viewers_decode_every_frame_through_the_lean_sender(
        relay: Relay, viewers: list[tuple[BroadcastViewer, Wire]]) -> None:
    packer = packer_for(vp8(), relay.video)
    sent, packed = relay.video.packets, packer.packed
    got = [v.frames for v, _ in viewers]
    await asyncio.sleep(2.5)
    sent, packed = relay.video.packets - sent, packer.packed - packed
    assert sent >= 2.5 * 12
    for (viewer, _), before in zip(viewers, got, strict=True):
        assert viewer.frames - before >= 0.9 * sent, (viewer.name, viewer.frames - before, sent)
        assert viewer.sizes == {(640, 480)}
        assert viewer.audio_frames > 0
    # packetised once per frame, not once per viewer
    assert packed <= sent + 2, (packed, sent)
    # every viewer's stream is its own: SSRC, sequence numbers, timestamps
    assert len({wire.video_ssrc for _, wire in viewers}) == 3
    for _, wire in viewers:
        seqs = [p.sequence_number for p in wire.media[-50:]]
        assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:], strict=False))
        assert all(p.extensions.mid is None or p.extensions.mid == "0" for p in wire.media)


async def test_a_nacked_packet_is_retransmitted_and_the_frame_decodes(
        relay: Relay, viewers: list[tuple[BroadcastViewer, Wire]]) -> None:
    viewer, wire = viewers[0]

    def resent(seq: int) -> bool:
        return any(struct.unpack("!H", p.payload[:2])[0] == seq for p in wire.rtx)

    # lose the next few media packets on the wire, one at a time
    for _ in range(3):
        lost = (wire.media[-1].sequence_number + 5) % 65536
        wire.drop.add(lost)
        await until(lambda seq=lost: seq in wire.dropped, 5)  # type: ignore[misc]
        await until(lambda seq=lost: resent(seq), 5)  # type: ignore[misc]
        await asyncio.sleep(0.2)
    for lost in wire.dropped:
        original = next(p for p in wire.media if p.sequence_number == lost)
        rtx = next(p for p in wire.rtx if struct.unpack("!H", p.payload[:2])[0] == lost)
        assert rtx.payload[2:] == original.payload
        assert rtx.timestamp == original.timestamp and rtx.marker == original.marker
    # the viewer asked for them (NACK) and kept decoding every frame
    sent, before = relay.video.packets, viewer.frames
    await asyncio.sleep(1.5)
    assert viewer.frames - before >= 0.9 * (relay.video.packets - sent)


async def test_sender_reports_count_what_was_sent(
        relay: Relay, viewers: list[tuple[BroadcastViewer, Wire]]) -> None:
    _, wire = viewers[1]
    seen = len(wire.reports)
    await until(lambda: len(wire.reports) >= seen + 2, 6)
    for report, packets, octets in wire.reports[seen:]:
        info = report.sender_info
        assert info.packet_count == packets
        assert info.octet_count == octets
        assert info.rtp_timestamp == wire.media[packets - 1].timestamp
    # NTP in the report is the wall clock (RFC 3550 6.4.1)
    ntp_seconds = (wire.reports[-1][0].sender_info.ntp_timestamp >> 32) - 2208988800
    assert abs(ntp_seconds - time.time()) < 5
    pc = relay.viewers[1][0]
    stats = await pc.getTransceivers()[0].sender.getStats()
    outbound = [s for s in stats.values() if s.type == "outbound-rtp"]
    assert outbound and outbound[0].packetsSent >= wire.reports[-1][1]


async def test_picture_loss_from_a_viewer_reaches_the_relay(
        relay: Relay, viewers: list[tuple[BroadcastViewer, Wire]]) -> None:
    viewer, wire = viewers[2]
    receiver = next(t.receiver for t in viewer.pc.getTransceivers() if t.kind == "video")
    before = relay.keyframe_requests
    assert wire.video_ssrc is not None
    await receiver._send_rtcp_pli(wire.video_ssrc)
    await until(lambda: relay.keyframe_requests > before, 5)


async def test_a_stopped_viewer_ends_its_sender(relay: Relay) -> None:
    viewer = BroadcastViewer("leaving")
    _, _, _ = await relay.watch(viewer)
    await asyncio.wait_for(viewer.first_frame.wait(), 10)
    pc, track, _, _ = relay.viewers[-1]
    await asyncio.wait_for(pc.close(), 5)  # the RTP loop exits (RTCRtpSender.stop waits for it)
    assert track.readyState == "ended"
    await viewer.close()
