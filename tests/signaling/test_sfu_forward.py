"""Pure pieces of the relay: keyframe detection, bounded viewer queues, throttled keyframe
requests, the answer's bandwidth lines."""

from __future__ import annotations

import asyncio

import av

from yilian.signaling.sfu.broadcast import _with_bandwidth
from yilian.signaling.sfu.forward import ForwardTrack, KeyframeRequester, PacketHub, is_keyframe


def packet(key: bool, pts: int = 0) -> av.Packet:
    p = av.Packet(b"\x00" if key else b"\x01")
    p.pts = pts
    p.is_keyframe = key
    return p


def test_keyframes_are_recognised_in_vp8_and_h264() -> None:
    assert is_keyframe("video/VP8", b"\x10\x02\x00")
    assert not is_keyframe("video/VP8", b"\x11\x02\x00")
    assert not is_keyframe("video/VP8", b"")
    idr = b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x01\x65\x88"
    assert is_keyframe("video/H264", idr)
    assert not is_keyframe("video/H264", b"\x00\x00\x00\x01\x41\x9a")
    assert not is_keyframe("video/H264", b"\x00\x00\x01")
    assert is_keyframe("audio/opus", b"\x01")


async def test_a_viewer_queue_stays_bounded_and_restarts_at_a_keyframe() -> None:
    asked: list[int] = []
    hub = PacketHub("video", lambda: asked.append(1))
    track = ForwardTrack("video", capacity=4)
    track.attach(hub)
    assert asked == [1]  # a new viewer asks for a keyframe
    hub.push(packet(False))
    assert track.backlog == 0 and track.dropped == 1  # nothing before the first keyframe
    hub.push(packet(True, 1))
    for pts in range(2, 40):
        hub.push(packet(False, pts))
    assert track.backlog <= 4 and track.overflows == 1 and track.waiting_keyframe
    assert len(asked) == 2
    hub.push(packet(True, 40))
    assert track.backlog == 1 and (await track.recv()).pts == 40
    track.stop()
    assert track not in hub.tracks


async def test_audio_queues_drop_the_oldest() -> None:
    hub = PacketHub("audio")
    track = ForwardTrack("audio", capacity=3)
    track.attach(hub)
    for pts in range(10):
        hub.push(packet(False, pts))
    assert [(await track.recv()).pts for _ in range(3)] == [7, 8, 9]
    track.stop()


async def test_keyframe_requests_are_coalesced_and_throttled() -> None:
    sent: list[float] = []
    loop = asyncio.get_running_loop()

    async def send() -> bool:
        sent.append(loop.time())
        return True

    requester = KeyframeRequester(send, 0.2)
    for _ in range(5):
        requester.request()
    await asyncio.sleep(0.05)
    assert len(sent) == 1
    for _ in range(5):
        requester.request()
    await asyncio.sleep(0.3)
    assert len(sent) == 2 and sent[1] - sent[0] >= 0.19
    assert requester.sent == 2
    await requester.close()


def test_the_answer_carries_the_ceiling_on_its_video_section_only() -> None:
    sdp = "v=0\r\nm=audio 9 X 96\r\nc=IN IP4 0.0.0.0\r\nm=video 9 X 97\r\nc=IN IP4 0.0.0.0\r\nb=AS:9\r\n"
    out = _with_bandwidth(sdp, 1_500_000).split("\r\n")
    video = out.index("m=video 9 X 97")
    assert out[video + 1:video + 4] == ["c=IN IP4 0.0.0.0", "b=AS:1500", "b=TIAS:1500000"]
    assert "b=AS:9" not in out and out.count("b=AS:1500") == 1
