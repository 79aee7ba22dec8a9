"""``Broadcast``: one presenter's media forwarded to many viewers, encoded once per layer.

The presenter's peer connection receives without decoding (``forward.tap_receiver``); its
video and audio packets go through hubs to every viewer's sender, which only re-packetises
them. The low layer (``lowlayer.LowLayer``) runs only while some viewer is on it. Viewers'
picture-loss reports become keyframe requests to the presenter, coalesced and throttled; the
presenter's bitrate is capped by clamping the estimates (REMB) we send it and by ``b=AS`` /
``b=TIAS`` in the answer (what Chromium obeys).

This module holds the presenter's side and the whole; each viewer's connection is a
``viewer.Viewer``, the layers and the auto layer policy are in ``layers``, the recorder's
start and close in ``recording``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from yilian.server.core.errors import Conflict
from yilian.signaling.errors import InvalidPayload, NotWaiting, UnknownPeer
from yilian.signaling.sfu.forward import (
    KeyframeRequester,
    PacketHub,
    cap_remb,
    media_ssrc,
    send_remb,
    tap_receiver,
)
from yilian.signaling.sfu.ice import add_candidate
from yilian.signaling.sfu.layers import Layers, check_layer, initial_layer, judge
from yilian.signaling.sfu.recording import (
    Recorder,
    RecorderFactory,
    close_recorder,
    open_recorder,
)
from yilian.signaling.sfu.viewer import Viewer

logger = logging.getLogger(__name__)


class NotLive(Conflict):
    """The presenter's media has not started (or has stopped)."""

    code = "not_live"


class BroadcastClosed(Conflict):
    code = "room_closed"


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


def _primary(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    for codec in transceiver._codecs:
        if codec.mimeType.lower() != f"{transceiver.kind}/rtx":
            return codec
    return None


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
        self._layers = Layers(self.video, config.low_bitrate, self._want_keyframe)
        self._viewers: dict[str, Viewer] = {}
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
                    tap_receiver(transceiver.receiver, functools.partial(self._push, hub, pc=pc))
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
        await add_candidate(self._presenter, candidate)

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
        recorder = await open_recorder(self._recorder_factory, self._video_codec,
                                       self._audio_codec, self.room)
        if recorder is None:
            return
        if not self.live or self.closed:
            await self._close_recorder(recorder)
            return
        self.recorder = recorder
        recorder.want_keyframe = self._want_keyframe  # after a slow disk dropped video
        self._want_keyframe()  # the file starts at a keyframe

    def _on_video(self, packet: av.Packet) -> None:
        self._bytes += packet.size
        if self.recorder is not None:
            self.recorder.write_video(packet)
        self._layers.feed(packet)

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
        await self._layers.stop()
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
        closed, result = await close_recorder(recorder, self.room)
        if closed:
            self.recording_result = result

    # viewers

    async def subscribe(self, viewer_id: str, layer: str = "auto") -> RTCSessionDescription:
        """A viewer joins (or re-subscribes): returns our offer for it."""
        choice = check_layer(layer)
        if self.closed:
            raise BroadcastClosed(f"the broadcast of {self.room} has ended")
        if not self.live or self._video_codec is None:
            raise NotLive(f"{self.room} is not broadcasting yet")
        if viewer_id in self._viewers:
            await self._drop_viewer(viewer_id)
        viewer = Viewer.open(viewer_id, choice, initial_layer(choice, self.config.low_layer),
                             ice_servers=self.config.ice_servers,
                             queue_packets=self.config.viewer_queue_packets,
                             audio=self._audio_codec is not None)
        self._viewers[viewer_id] = viewer
        try:
            offer = await viewer.offer(self._video_codec, self._audio_codec)
        except Exception:
            await self._drop_viewer(viewer_id)
            raise
        self._attach(viewer, viewer.layer)
        if viewer.audio is not None:
            viewer.audio.attach(self.audio)
        pc = viewer.pc

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            if pc.connectionState == "failed" and self._viewers.get(viewer_id) is viewer:
                self._spawn(self.unsubscribe(viewer_id))

        self._changed()
        return offer

    async def accept(self, viewer_id: str, answer: RTCSessionDescription) -> None:
        """The viewer's answer to our offer."""
        await self._viewer(viewer_id).accept(answer)

    async def add_viewer_candidate(self, viewer_id: str, candidate: dict[str, Any]) -> None:
        await self._viewer(viewer_id).add_candidate(candidate)

    async def set_layer(self, viewer_id: str, layer: str) -> str:
        """The viewer's choice; returns the layer it now gets."""
        choice = check_layer(layer)
        viewer = self._viewer(viewer_id)
        viewer.choice = choice
        viewer.bad = viewer.good = 0
        target = viewer.layer if choice == "auto" else initial_layer(choice, self.config.low_layer)
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

    def _viewer(self, viewer_id: str) -> Viewer:
        viewer = self._viewers.get(viewer_id)
        if viewer is None:
            raise NotWaiting(f"{viewer_id[:80]} has not subscribed to {self.room}")
        return viewer

    async def _drop_viewer(self, viewer_id: str) -> None:
        viewer = self._viewers.pop(viewer_id, None)
        if viewer is None:
            return
        await viewer.close()
        await self._layers.release()

    def _attach(self, viewer: Viewer, layer: str) -> None:
        self._layers.attach(viewer, layer, self._video_codec)
        if layer == "high":
            self._spawn(self._layers.release())

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
                for viewer in [v for v in self._viewers.values() if v.choice == "auto"]:
                    target = judge(viewer, self.config, self._rate)
                    if target is not None:
                        self._move(viewer, target)

    async def _hold_ceiling(self) -> None:
        """Keep reminding the presenter of the ceiling when the estimator stays quiet (it
        only speaks when its estimate changes)."""
        receiver = self._video_receiver
        ssrc = media_ssrc(receiver) if receiver is not None else None
        if receiver is not None and ssrc is not None:
            last = self._remb_sent()
            await send_remb(receiver, min(last or self.config.max_bitrate,
                                          self.config.max_bitrate), ssrc)

    def _move(self, viewer: Viewer, layer: str) -> None:
        self._attach(viewer, layer)
        logger.info("viewer %s of %s moved to the %s layer", viewer.viewer_id, self.room, layer)
        if self.on_layer_change is not None:
            self.on_layer_change(viewer.viewer_id, layer, "auto")
        self._changed()

    # the whole

    def stats(self) -> dict[str, Any]:
        """Viewers, per-layer counts, packets forwarded/dropped, keyframe requests sent."""
        viewers = list(self._viewers.values())
        return {
            "live": self.live,
            "viewers": len(viewers),
            "high": sum(1 for v in viewers if v.layer == "high"),
            "low": sum(1 for v in viewers if v.layer == "low"),
            "packets_in": self.video.packets + self.audio.packets,
            "forwarded": sum(v.forwarded for v in viewers),
            "dropped": sum(v.dropped for v in viewers),
            "keyframe_requests": self._keyframes.sent,
            "low_layer": self._layers.stats(),
            "bitrate": int(self._rate),
        }

    def viewer_stats(self, viewer_id: str) -> dict[str, Any]:
        return self._viewer(viewer_id).stats()

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
        await self._layers.stop()
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
