"""One viewer of a broadcast: its peer connection, its forwarding tracks and its reports.

A viewer is offered exactly the presenter's codec (packets are forwarded as they are, never
re-encoded) plus retransmissions. Its RTCP comes back here: picture-loss reports become
keyframe requests (through its video track), receiver reports and REMB estimates are kept for
the auto layer choice (``layers.judge``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpRrPacket, RtcpSrPacket, unpack_remb_fci

from yilian.signaling.errors import InvalidPayload, NotWaiting
from yilian.signaling.sfu.forward import ForwardTrack
from yilian.signaling.sfu.ice import add_candidate
from yilian.signaling.sfu.sender import lean_sender


def preferences(kind: str, codec: RTCRtpCodecParameters) -> list[RTCRtpCodecCapability]:
    """The viewer's codec: the presenter's (packets are forwarded as they are), the closest
    of aiortc's capabilities, and retransmissions (RTX) where the kind has them."""
    caps = RTCRtpSender.getCapabilities(kind).codecs
    mime = codec.mimeType.lower()
    same = [c for c in caps if c.mimeType.lower() == mime]
    if mime == "video/h264":
        mode = str(codec.parameters.get("packetization-mode", "0"))
        same = [c for c in same if str(c.parameters.get("packetization-mode", "0")) == mode]
        profile = str(codec.parameters.get("profile-level-id", ""))
        same.sort(key=lambda c: str(c.parameters.get("profile-level-id", "")) != profile)
    if not same:
        raise InvalidPayload(f"viewers cannot be sent {codec.mimeType}")
    rtx = [c for c in caps if c.mimeType.lower() == f"{kind}/rtx"]
    return same[:1] + rtx


@dataclass
class Viewer:
    """A subscribed viewer; ``layer`` is what it gets, ``choice`` what it asked for."""

    viewer_id: str
    pc: RTCPeerConnection
    video: ForwardTrack
    audio: ForwardTrack | None
    choice: str
    layer: str
    sender: RTCRtpSender | None = None
    answered: bool = False
    loss: float = 0.0  # last fraction lost the viewer reported
    remb: int | None = None  # last bandwidth estimate the viewer reported
    # the auto layer's bookkeeping (``layers.judge``)
    overflows_seen: int = 0
    bad: int = 0
    good: int = 0

    @classmethod
    def open(cls, viewer_id: str, choice: str, layer: str, *, ice_servers: list[RTCIceServer],
             queue_packets: int, audio: bool) -> Viewer:
        """A viewer with a fresh peer connection and tracks (audio ones hold three times as
        many packets as video)."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=list(ice_servers)))
        return cls(viewer_id, pc, ForwardTrack("video", queue_packets),
                   ForwardTrack("audio", queue_packets * 3) if audio else None, choice, layer)

    async def offer(self, video_codec: RTCRtpCodecParameters,
                    audio_codec: RTCRtpCodecParameters | None) -> RTCSessionDescription:
        """Add the send-only transceivers (with the presenter's codecs) and make our offer."""
        video_tx = self.pc.addTransceiver(self.video, direction="sendonly")
        video_tx.setCodecPreferences(preferences("video", video_codec))
        self.sender = video_tx.sender
        lean_sender(video_tx.sender)  # each frame packetised once per layer (sfu.sender)
        self._watch_sender(video_tx.sender)
        if self.audio is not None and audio_codec is not None:
            audio_tx = self.pc.addTransceiver(self.audio, direction="sendonly")
            audio_tx.setCodecPreferences(preferences("audio", audio_codec))
            lean_sender(audio_tx.sender)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription

    def _watch_sender(self, sender: RTCRtpSender) -> None:
        """Picture-loss reports become requests to the presenter; loss and bandwidth reports
        feed the auto layer choice."""
        sender._send_keyframe = self.video.request_keyframe  # type: ignore[method-assign]
        original = sender._handle_rtcp_packet

        async def handle(packet: Any) -> None:
            if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
                for report in packet.reports:
                    if report.ssrc == sender._ssrc:
                        self.loss = report.fraction_lost / 256
            elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    self.remb = unpack_remb_fci(packet.fci)[0]
                except ValueError:
                    pass
            await original(packet)

        sender._handle_rtcp_packet = handle  # type: ignore[method-assign]

    async def accept(self, answer: RTCSessionDescription) -> None:
        """The viewer's answer to our offer."""
        if answer.type != "answer":
            raise InvalidPayload("a viewer answers the relay's offer")
        if self.answered or self.pc.signalingState != "have-local-offer":
            raise NotWaiting("no offer of the relay is waiting for this viewer's answer")
        try:
            await self.pc.setRemoteDescription(answer)
        except Exception as exc:
            raise InvalidPayload(f"the answer could not be used: {str(exc)[:200]}") from None
        self.answered = True

    async def add_candidate(self, candidate: dict[str, Any]) -> None:
        await add_candidate(self.pc, candidate)

    async def close(self) -> None:
        self.video.stop()
        if self.audio is not None:
            self.audio.stop()
        await self.pc.close()

    @property
    def forwarded(self) -> int:
        return self.video.forwarded + (self.audio.forwarded if self.audio else 0)

    @property
    def dropped(self) -> int:
        return self.video.dropped + (self.audio.dropped if self.audio else 0)

    def stats(self) -> dict[str, Any]:
        return {"layer": self.layer, "choice": self.choice, "backlog": self.video.backlog,
                "forwarded": self.video.forwarded, "dropped": self.video.dropped,
                "overflows": self.video.overflows, "loss": self.loss, "remb": self.remb}
