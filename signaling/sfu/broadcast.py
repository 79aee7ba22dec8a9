"""``Broadcast``: one presenter's media forwarded to many viewers, encoded once per layer.

The presenter's peer connection receives without decoding (``forward.tap_receiver``); its
video and audio packets go through hubs to every viewer's sender, which only re-packetises
them. The low layer (``lowlayer.LowLayer``) runs only while some viewer is on it. Viewers'
picture-loss reports become keyframe requests to the presenter, coalesced and throttled; the
presenter's bitrate is capped by clamping the estimates (REMB) we send it and by ``b=AS`` /
``b=TIAS`` in the answer (what Chromium obeys).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import av
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpRrPacket, RtcpSrPacket, unpack_remb_fci
from aiortc.sdp import candidate_from_sdp

from yilian.server.core.errors import Conflict
from yilian.signaling.errors import InvalidPayload, NotWaiting, UnknownPeer
from yilian.signaling.sfu.forward import (
    ForwardTrack,
    KeyframeRequester,
    PacketHub,
    cap_remb,
    media_ssrc,
    send_remb,
    tap_receiver,
)
from yilian.signaling.sfu.lowlayer import LowLayer

logger = logging.getLogger(__name__)

LAYERS = ("auto", "high", "low")


class NotLive(Conflict):
    """The presenter's media has not started (or has stopped)."""

    code = "not_live"


class BroadcastClosed(Conflict):
    code = "room_closed"


class Recorder(Protocol):
    """What the broadcast needs of ``record.Recorder``."""

    container: str

    def write_video(self, packet: av.Packet) -> None: ...

    def write_audio(self, packet: av.Packet) -> None: ...

    async def close(self) -> Any: ...


#: ``factory(video_mime, audio_mime)``: a started recorder, or ``None`` for no recording.
RecorderFactory = Callable[[str, "str | None"],
                           "Recorder | None | Awaitable[Recorder | None]"]


@dataclass(frozen=True)
class BroadcastConfig:
    """Settings of one broadcast (``rtc.teaching_*`` in the server's settings)."""

    ice_servers: list[RTCIceServer] = field(default_factory=list)  # [] on loopback
    max_bitrate: int = 1_500_000  # the presenter's ceiling, bit/s
    low_layer: bool = True  # offer the 320x240 layer
    low_bitrate: int = 280_000
    keyframe_min_interval: float = 0.5  # s between keyframe requests to the presenter
    viewer_queue_packets: int = 8  # video frames a viewer may lag before it skips to a keyframe
    # auto layer: seconds between checks; bad checks before moving down, good ones before up
    auto_interval: float = 1.0
    auto_down_after: int = 2
    auto_up_after: int = 8
    auto_loss_down: float = 0.08  # fraction of packets lost (receiver reports)
    auto_loss_up: float = 0.02


@dataclass
class _Viewer:
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
    overflows_seen: int = 0
    bad: int = 0
    good: int = 0


def _with_bandwidth(sdp: str, bitrate: int) -> str:
    """``sdp`` with ``b=AS`` (kbit/s) and ``b=TIAS`` (bit/s) on its video section."""
    out: list[str] = []
    in_video = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        if in_video and line.startswith(("b=AS:", "b=TIAS:")):
            continue
        out.append(line)
        if in_video and line.startswith("c="):
            out.append(f"b=AS:{max(1, bitrate // 1000)}")
            out.append(f"b=TIAS:{bitrate}")
    return "\r\n".join(out) + "\r\n"


def _preferences(kind: str, codec: RTCRtpCodecParameters) -> list[RTCRtpCodecCapability]:
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


def _primary(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    for codec in transceiver._codecs:
        if codec.mimeType.lower() != f"{transceiver.kind}/rtx":
            return codec
    return None


def parse_candidate(candidate: dict[str, Any]) -> Any:
    """An aiortc candidate from an RTCIceCandidateInit; ``None`` for the end of candidates."""
    text = candidate.get("candidate") or ""
    if not text:
        return None
    try:
        parsed = candidate_from_sdp(text.removeprefix("candidate:"))
    except (AssertionError, ValueError, IndexError, KeyError):  # aiortc asserts on its shape
        raise InvalidPayload('"candidate.candidate" is not an ICE candidate') from None
    parsed.sdpMid = candidate.get("sdpMid")
    parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
    return parsed


async def _add_candidate(pc: RTCPeerConnection, candidate: dict[str, Any]) -> None:
    parsed = parse_candidate(candidate)
    if parsed is None:
        return
    try:
        await pc.addIceCandidate(parsed)
    except (ValueError, KeyError, AttributeError) as exc:  # no such media section, ...
        raise InvalidPayload(f"the candidate does not fit the connection ({exc})") from None


class Broadcast:
    """One presenter, many viewers (see the module's docstring)."""

    def __init__(self, room: str, config: BroadcastConfig,
                 recorder: RecorderFactory | None = None) -> None:
        self.room = room
        self.config = config
        self._recorder_factory = recorder
        self.recorder: Recorder | None = None
        self.recording_result: Any = None
        self.on_layer_change: Callable[[str, str, str], None] | None = None
        #: ``on_live(live)`` when the presenter's media starts (first packet) or stops.
        self.on_live: Callable[[bool], None] | None = None
        #: called when the viewer count or their layers change
        self.on_viewers: Callable[[], None] | None = None
        self.video = PacketHub("video", self._want_keyframe)
        self.audio = PacketHub("audio")
        self.video.listeners.append(self._on_video)
        self.audio.listeners.append(self._on_audio)
        self._keyframes = KeyframeRequester(self._send_pli, config.keyframe_min_interval)
        self._presenter: RTCPeerConnection | None = None
        self._video_receiver: RTCRtpReceiver | None = None
        self._video_codec: RTCRtpCodecParameters | None = None
        self._audio_codec: RTCRtpCodecParameters | None = None
        self._remb_sent: Callable[[], int | None] = lambda: None
        self._low: LowLayer | None = None
        self._viewers: dict[str, _Viewer] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._monitor: asyncio.Task[None] | None = None
        self._recording: asyncio.Task[None] | None = None
        self.live = False
        self.closed = False
        self.started_at: float | None = None
        self._bytes = 0
        self._rate = 0.0  # the high layer's measured bit/s
        self._rate_at = time.monotonic()

    # presenter

    async def publish(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Take the presenter's offer (replacing earlier media) and return our answer. An
        offer that cannot be used is refused and leaves the current media as it was."""
        if self.closed:
            raise BroadcastClosed(f"the broadcast of {self.room} has ended")
        if offer.type != "offer":
            raise InvalidPayload("the presenter sends an offer")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=list(self.config.ice_servers)))
        video: dict[str, Any] = {}

        @pc.on("track")
        def _on_track(track: Any) -> None:
            for transceiver in pc.getTransceivers():
                if transceiver.receiver.track is track:
                    hub = self.video if track.kind == "video" else self.audio
                    tap_receiver(transceiver.receiver,
                                 lambda p, h=hub: self._push(h, p, pc))
                    if track.kind == "video" and "receiver" not in video:
                        video["receiver"] = transceiver.receiver
                        video["remb"] = cap_remb(transceiver.receiver, self.config.max_bitrate)

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            if pc is self._presenter and pc.connectionState in ("failed", "closed"):
                self._spawn(self._presenter_gone(pc))

        video_codec = audio_codec = None
        try:
            await pc.setRemoteDescription(offer)
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "video" and video_codec is None:
                    video_codec = _primary(transceiver)
                elif transceiver.kind == "audio" and audio_codec is None:
                    audio_codec = _primary(transceiver)
            if video_codec is None or "receiver" not in video:
                raise InvalidPayload("the presenter's offer has no video we can receive "
                                     "(VP8, or H.264 packetization-mode 1)")
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            await pc.close()
            if isinstance(exc, InvalidPayload):
                raise
            raise InvalidPayload(f"the offer could not be used: {str(exc)[:200]}") from None
        if self.closed:
            await pc.close()
            raise BroadcastClosed(f"the broadcast of {self.room} has ended")
        await self._stop_presenter()
        self._presenter = pc
        self._video_receiver = video["receiver"]
        self._remb_sent = video["remb"]
        self._video_codec, self._audio_codec = video_codec, audio_codec
        if self._monitor is None:
            self._monitor = asyncio.get_running_loop().create_task(self._watch(),
                                                                   name=f"sfu-{self.room}")
        local = pc.localDescription
        return RTCSessionDescription(_with_bandwidth(local.sdp, self.config.max_bitrate),
                                     "answer")

    async def add_presenter_candidate(self, candidate: dict[str, Any]) -> None:
        """A trickled candidate of the presenter's (aiortc's answer already holds ours)."""
        if self._presenter is None:
            raise NotLive("nothing is being published")
        await _add_candidate(self._presenter, candidate)

    def _push(self, hub: PacketHub, packet: av.Packet, pc: RTCPeerConnection) -> None:
        if pc is not self._presenter or self.closed:
            return
        if not self.live and hub is self.video:
            self.live = True
            self.started_at = time.monotonic()
            self._spawn(self._start_recording())
            if self.on_live is not None:
                self.on_live(True)
        hub.push(packet)

    async def _start_recording(self) -> None:
        if self._recorder_factory is None or self._video_codec is None:
            return
        try:
            made = self._recorder_factory(
                self._video_codec.mimeType,
                self._audio_codec.mimeType if self._audio_codec else None)
            recorder = await made if inspect.isawaitable(made) else made
        except Exception:
            logger.exception("the recording of %s could not start", self.room)
            return
        if recorder is None:
            return
        if not self.live or self.closed:
            await self._close_recorder(recorder)
            return
        self.recorder = recorder
        self._want_keyframe()  # the file starts at a keyframe

    def _on_video(self, packet: av.Packet) -> None:
        self._bytes += packet.size
        if self.recorder is not None:
            self.recorder.write_video(packet)
        if self._low is not None:
            self._low.feed(packet)

    def _on_audio(self, packet: av.Packet) -> None:
        if self.recorder is not None:
            self.recorder.write_audio(packet)

    def _want_keyframe(self) -> None:
        self._keyframes.request()

    async def _send_pli(self) -> bool:
        receiver = self._video_receiver
        ssrc = media_ssrc(receiver) if receiver is not None else None
        if receiver is None or ssrc is None:
            return False
        await receiver._send_rtcp_pli(ssrc)
        return True

    async def _presenter_gone(self, pc: RTCPeerConnection) -> None:
        if pc is self._presenter:
            await self._stop_presenter()

    async def _stop_presenter(self) -> None:
        """End the presenter's media: viewers stay subscribed (they get the next
        publication), the recording is closed."""
        pc = self._presenter
        self._presenter = None
        self._video_receiver = None
        self._video_codec = self._audio_codec = None
        was_live = self.live
        self.live = False
        if self._low is not None:
            await self._low.stop()
            self._low = None
        recorder, self.recorder = self.recorder, None
        if pc is not None:
            await pc.close()
        if recorder is not None:
            await self._close_recorder(recorder)
        if was_live:
            # The viewers' connections are bound to the old codec: they subscribe again.
            await asyncio.gather(*(self._drop_viewer(v) for v in list(self._viewers)))
            if self.on_live is not None:
                self.on_live(False)

    async def stop_publishing(self) -> None:
        """The presenter stopped (left, or unpublished)."""
        await self._stop_presenter()

    async def _close_recorder(self, recorder: Recorder) -> None:
        try:
            self.recording_result = await recorder.close()
        except Exception:
            logger.exception("the recording of %s did not close cleanly", self.room)

    # viewers

    def _check_layer(self, layer: Any) -> str:
        if layer not in LAYERS:
            raise InvalidPayload(f'"layer" must be one of {list(LAYERS)}')
        return str(layer)

    def _initial_layer(self, choice: str) -> str:
        return "low" if choice == "low" and self.config.low_layer else "high"

    async def subscribe(self, viewer_id: str, layer: str = "auto") -> RTCSessionDescription:
        """A viewer joins (or re-subscribes): returns our offer for it."""
        choice = self._check_layer(layer)
        if self.closed:
            raise BroadcastClosed(f"the broadcast of {self.room} has ended")
        if not self.live or self._video_codec is None:
            raise NotLive(f"{self.room} is not broadcasting yet")
        if viewer_id in self._viewers:
            await self._drop_viewer(viewer_id)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=list(self.config.ice_servers)))
        queue = self.config.viewer_queue_packets
        video = ForwardTrack("video", queue)
        audio = ForwardTrack("audio", queue * 3) if self._audio_codec is not None else None
        viewer = _Viewer(viewer_id, pc, video, audio, choice, self._initial_layer(choice))
        self._viewers[viewer_id] = viewer
        try:
            video_tx = pc.addTransceiver(video, direction="sendonly")
            video_tx.setCodecPreferences(_preferences("video", self._video_codec))
            viewer.sender = video_tx.sender
            self._watch_sender(viewer, video_tx.sender)
            if audio is not None and self._audio_codec is not None:
                audio_tx = pc.addTransceiver(audio, direction="sendonly")
                audio_tx.setCodecPreferences(_preferences("audio", self._audio_codec))
            await pc.setLocalDescription(await pc.createOffer())
        except Exception:
            await self._drop_viewer(viewer_id)
            raise
        self._attach(viewer, viewer.layer)
        if audio is not None:
            audio.attach(self.audio)

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            if pc.connectionState == "failed" and self._viewers.get(viewer_id) is viewer:
                self._spawn(self.unsubscribe(viewer_id))

        self._changed()
        return pc.localDescription

    def _watch_sender(self, viewer: _Viewer, sender: RTCRtpSender) -> None:
        """Picture-loss reports become requests to the presenter; loss and bandwidth reports
        feed the auto layer choice."""
        sender._send_keyframe = viewer.video.request_keyframe  # type: ignore[method-assign]
        original = sender._handle_rtcp_packet

        async def handle(packet: Any) -> None:
            if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
                for report in packet.reports:
                    if report.ssrc == sender._ssrc:
                        viewer.loss = report.fraction_lost / 256
            elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    viewer.remb = unpack_remb_fci(packet.fci)[0]
                except ValueError:
                    pass
            await original(packet)

        sender._handle_rtcp_packet = handle  # type: ignore[method-assign]

    async def accept(self, viewer_id: str, answer: RTCSessionDescription) -> None:
        """The viewer's answer to our offer."""
        viewer = self._viewer(viewer_id)
        if answer.type != "answer":
            raise InvalidPayload("a viewer answers the relay's offer")
        if viewer.answered or viewer.pc.signalingState != "have-local-offer":
            raise NotWaiting("no offer of the relay is waiting for this viewer's answer")
        try:
            await viewer.pc.setRemoteDescription(answer)
        except Exception as exc:
            raise InvalidPayload(f"the answer could not be used: {str(exc)[:200]}") from None
        viewer.answered = True

    async def add_viewer_candidate(self, viewer_id: str, candidate: dict[str, Any]) -> None:
        await _add_candidate(self._viewer(viewer_id).pc, candidate)

    async def set_layer(self, viewer_id: str, layer: str) -> str:
        """The viewer's choice; returns the layer it now gets."""
        choice = self._check_layer(layer)
        viewer = self._viewer(viewer_id)
        viewer.choice = choice
        viewer.bad = viewer.good = 0
        target = viewer.layer if choice == "auto" else self._initial_layer(choice)
        if target != viewer.layer:
            self._attach(viewer, target)
            self._changed()
        return viewer.layer

    async def unsubscribe(self, viewer_id: str) -> None:
        if viewer_id not in self._viewers:
            raise UnknownPeer(f"{viewer_id[:80]} is not watching {self.room}")
        await self._drop_viewer(viewer_id)
        self._changed()

    def viewer_layer(self, viewer_id: str) -> str:
        return self._viewer(viewer_id).layer

    def _viewer(self, viewer_id: str) -> _Viewer:
        viewer = self._viewers.get(viewer_id)
        if viewer is None:
            raise NotWaiting(f"{viewer_id[:80]} has not subscribed to {self.room}")
        return viewer

    async def _drop_viewer(self, viewer_id: str) -> None:
        viewer = self._viewers.pop(viewer_id, None)
        if viewer is None:
            return
        viewer.video.stop()
        if viewer.audio is not None:
            viewer.audio.stop()
        await viewer.pc.close()
        await self._low_needed()

    def _attach(self, viewer: _Viewer, layer: str) -> None:
        if layer == "low":
            low = self._low_layer()
            viewer.video.attach(low.hub)
        else:
            viewer.video.attach(self.video)
        viewer.layer = layer
        viewer.overflows_seen = viewer.video.overflows
        if layer == "high":
            self._spawn(self._low_needed())

    def _low_layer(self) -> LowLayer:
        if self._low is None:
            assert self._video_codec is not None
            self._low = LowLayer(self._video_codec, self.config.low_bitrate, self._want_keyframe)
        self._low.start()
        return self._low

    async def _low_needed(self) -> None:
        """Stop the low layer's encoder once nobody watches it."""
        low = self._low
        if low is not None and not low.hub.tracks:
            self._low = None
            await low.stop()

    def _changed(self) -> None:
        if self.on_viewers is not None:
            self.on_viewers()

    # auto layer

    async def _watch(self) -> None:
        while not self.closed:
            await asyncio.sleep(self.config.auto_interval)
            now = time.monotonic()
            elapsed = max(now - self._rate_at, 1e-3)
            self._rate = self._bytes * 8 / elapsed
            self._bytes, self._rate_at = 0, now
            await self._hold_ceiling()
            if self.config.low_layer and self.live:
                for viewer in list(self._viewers.values()):
                    if viewer.choice == "auto":
                        self._judge(viewer)

    async def _hold_ceiling(self) -> None:
        """Keep reminding the presenter of the ceiling when the estimator stays quiet (it
        only speaks when its estimate changes)."""
        receiver = self._video_receiver
        ssrc = media_ssrc(receiver) if receiver is not None else None
        if receiver is not None and ssrc is not None:
            last = self._remb_sent()
            await send_remb(receiver, min(last or self.config.max_bitrate,
                                          self.config.max_bitrate), ssrc)

    def _judge(self, viewer: _Viewer) -> None:
        overflowed = viewer.video.overflows > viewer.overflows_seen
        viewer.overflows_seen = viewer.video.overflows
        starved = viewer.remb is not None and self._rate > 0 and viewer.remb < 0.8 * self._rate
        if viewer.layer == "high":
            bad = overflowed or viewer.loss >= self.config.auto_loss_down or starved
            viewer.bad = viewer.bad + 1 if bad else 0
            if viewer.bad >= self.config.auto_down_after:
                self._move(viewer, "low")
        else:
            good = not overflowed and viewer.loss <= self.config.auto_loss_up and not starved
            viewer.good = viewer.good + 1 if good else 0
            if viewer.good >= self.config.auto_up_after:
                self._move(viewer, "high")

    def _move(self, viewer: _Viewer, layer: str) -> None:
        viewer.bad = viewer.good = 0
        self._attach(viewer, layer)
        logger.info("viewer %s of %s moved to the %s layer", viewer.viewer_id, self.room, layer)
        if self.on_layer_change is not None:
            self.on_layer_change(viewer.viewer_id, layer, "auto")
        self._changed()

    # the whole

    def stats(self) -> dict[str, Any]:
        """Viewers, per-layer counts, packets forwarded/dropped, keyframe requests sent."""
        viewers = list(self._viewers.values())
        low = self._low
        return {
            "live": self.live,
            "viewers": len(viewers),
            "high": sum(1 for v in viewers if v.layer == "high"),
            "low": sum(1 for v in viewers if v.layer == "low"),
            "packets_in": self.video.packets + self.audio.packets,
            "forwarded": sum(v.video.forwarded + (v.audio.forwarded if v.audio else 0)
                             for v in viewers),
            "dropped": sum(v.video.dropped + (v.audio.dropped if v.audio else 0)
                           for v in viewers),
            "keyframe_requests": self._keyframes.sent,
            "low_layer": {"running": low is not None and low.running,
                          "frames_in": low.frames_in if low else 0,
                          "frames_out": low.frames_out if low else 0},
            "bitrate": int(self._rate),
        }

    def viewer_stats(self, viewer_id: str) -> dict[str, Any]:
        viewer = self._viewer(viewer_id)
        return {"layer": viewer.layer, "choice": viewer.choice, "backlog": viewer.video.backlog,
                "forwarded": viewer.video.forwarded, "dropped": viewer.video.dropped,
                "overflows": viewer.video.overflows, "loss": viewer.loss, "remb": viewer.remb}

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """End the viewers, the presenter and the recording; idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._monitor is not None:
            self._monitor.cancel()
            await asyncio.gather(self._monitor, return_exceptions=True)
        was_live = self.live
        viewers = list(self._viewers)
        await asyncio.gather(*(self._drop_viewer(v) for v in viewers))
        self.live = False
        await self._keyframes.close()
        if self._low is not None:
            await self._low.stop()
            self._low = None
        recorder, self.recorder = self.recorder, None
        pc, self._presenter = self._presenter, None
        if pc is not None:
            await pc.close()
        if recorder is not None:
            await self._close_recorder(recorder)
        tasks = list(self._tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        if was_live and self.on_live is not None:
            self.on_live(False)
