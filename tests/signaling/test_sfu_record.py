"""The broadcast recorder: forwarded packets muxed into WebM/Matroska and decoded back.

Packets come from PyAV's own encoders (libvpx, libx264, libopus) re-wrapped the way aiortc's
receiver hands them out: a bare ``av.Packet`` of the frame's bytes, ``pts`` in RTP clock units
(random start, 32-bit), ``time_base`` 1/90000 or 1/48000, no keyframe flag, no extradata.
"""

from __future__ import annotations

import asyncio
import os
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from yilian.signaling.sfu.record import Recorder, RecordingResult, is_keyframe

FPS = 30
VIDEO_TB = Fraction(1, 90000)
AUDIO_TB = Fraction(1, 48000)


def encode_video(codec: str, frames: int, gop: int = 15) -> list[bytes]:
    """Encoded 320x240 frames of a moving bar, one bytes object per frame."""
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = 320, 240, "yuv420p"
    ctx.time_base = Fraction(1, FPS)
    ctx.framerate = FPS
    ctx.gop_size = gop
    if codec == "libx264":
        ctx.options = {"tune": "zerolatency", "preset": "ultrafast"}
    out: list[bytes] = []
    for i in range(frames):
        rgb = np.zeros((240, 320, 3), np.uint8)
        rgb[:, (i * 7) % 280:(i * 7) % 280 + 40] = (255, 128, 0)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    assert len(out) == frames
    return out


def encode_audio(packets: int) -> list[bytes]:
    """20 ms Opus packets of a tone."""
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = 48000, "stereo", "s16"
    out: list[bytes] = []
    for i in range(packets + 5):
        tone = (np.sin(np.arange(i * 960, (i + 1) * 960) * 0.06) * 6000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16",
                                           layout="stereo")
        frame.sample_rate, frame.pts = 48000, i * 960
        out += [bytes(p) for p in ctx.encode(frame)]
    return out[:packets]


def rtp_packet(data: bytes, pts: int, time_base: Fraction) -> av.Packet:
    """A packet as aiortc's receiver builds it from a reassembled RTP frame."""
    packet = av.Packet(data)
    packet.pts = pts % 2**32
    packet.time_base = time_base
    return packet


@pytest.fixture(scope="module")
def vp8() -> list[bytes]:
    return encode_video("libvpx", 60)


@pytest.fixture(scope="module")
def h264() -> list[bytes]:
    return encode_video("libx264", 60)


@pytest.fixture(scope="module")
def opus() -> list[bytes]:
    return encode_audio(120)


async def play(recorder: Recorder, video: list[bytes], audio: list[bytes], *,
               video_start: int = 123_456, audio_start: int = 987_654,
               audio_delay: int = 0, pace: float = 1 / FPS) -> int:
    """Feed video at 30 fps and audio at 50 packets/s, paced in real time like a broadcast;
    returns how many audio packets went in."""
    a = 0
    for i, data in enumerate(video):
        recorder.write_video(rtp_packet(data, video_start + i * 3000, VIDEO_TB))
        # 50 audio packets per second against 30 video frames, starting audio_delay frames in
        while i >= audio_delay and a < len(audio) and a * 3 <= (i - audio_delay) * 5:
            recorder.write_audio(rtp_packet(audio[a], audio_start + a * 960, AUDIO_TB))
            a += 1
        await asyncio.sleep(pace)
    return a


def decode_all(path: Path) -> tuple[dict[str, int], dict[str, list[int]], av.container.InputContainer]:
    """Decode every frame of both streams; frame counts and packet dts per stream."""
    counts = {"video": 0, "audio": 0}
    dts: dict[str, list[int]] = {"video": [], "audio": []}
    container = av.open(str(path))
    for packet in container.demux():
        if packet.size == 0:
            continue
        kind = packet.stream.type
        dts[kind].append(packet.dts)
        counts[kind] += len(packet.decode())
    return counts, dts, container


@pytest.mark.parametrize(("codec", "mime", "fmt"), [
    ("vp8", "video/VP8", "webm"),
    ("h264", "video/H264", "matroska"),
])
async def test_every_frame_decodes_back(codec: str, mime: str, fmt: str, tmp_path: Path,
                                        request: pytest.FixtureRequest, opus: list[bytes]
                                        ) -> None:
    video: list[bytes] = request.getfixturevalue(codec)
    recorder = Recorder(tmp_path / f"r.{'webm' if codec == 'vp8' else 'mkv'}", mime, "audio/opus")
    assert recorder.container == ("webm" if codec == "vp8" else "mkv")
    sent = await play(recorder, video, opus)
    result = await recorder.close()
    assert result.ok and result.size == result.path.stat().st_size > 0
    assert 1.9 <= result.duration_s <= 2.3
    counts, dts, container = decode_all(result.path)
    assert fmt in container.format.name
    assert counts == {"video": 60, "audio": sent} and sent == 99
    assert all(b > a for a, b in zip(dts["video"], dts["video"][1:], strict=False))
    video_stream = container.streams.video[0]
    assert (video_stream.codec_context.width, video_stream.codec_context.height) == (320, 240)
    if codec == "h264":
        # No extradata came in: the SPS/PPS were taken from the first keyframe into avcC.
        assert video_stream.codec_context.extradata[:1] == b"\x01"
    assert container.streams.audio[0].codec_context.name == "opus"
    # 60 frames at 30 fps: the file says 2 s, within one frame
    assert abs(float(container.duration / av.time_base) - 2.0) < 0.05
    container.close()
    assert not recorder._thread.is_alive()


async def test_starts_at_the_first_keyframe_and_aligns_audio(tmp_path: Path, vp8: list[bytes],
                                                            opus: list[bytes]) -> None:
    """Frames before the first keyframe and audio before it are dropped; audio that starts
    0.5 s after the picture starts 0.5 s into the file."""
    recorder = Recorder(tmp_path / "late.webm", "video/VP8", "audio/opus")
    # 5 inter frames from the middle of the first GOP, then from the keyframe at 15 on
    await play(recorder, vp8[10:15], [])
    sent = await play(recorder, vp8[15:], opus, video_start=123_456 + 5 * 3000,
                      audio_delay=15)
    result = await recorder.close()
    assert result.ok and (recorder.before_start, recorder.dropped) == (5, 0)
    counts, dts, container = decode_all(result.path)
    assert counts == {"video": 45, "audio": sent} and sent == 49
    assert dts["video"][0] == 0
    # The audio started 15 frames (0.5 s) after the first keyframe arrived.
    first_audio_ms = dts["audio"][0] * container.streams.audio[0].time_base * 1000
    assert 430 <= first_audio_ms <= 650, first_audio_ms
    container.close()


async def test_wraps_jumps_and_duplicates(tmp_path: Path, vp8: list[bytes]) -> None:
    """The RTP clock wraps past 2**32, repeats a frame, then jumps ahead ten minutes and back
    five (encoder restarts): the file keeps increasing timestamps and the wall-clock duration."""
    recorder = Recorder(tmp_path / "clock.webm", "video/VP8", None)
    start = 2**32 - 20 * 3000  # wraps after 20 frames
    for i, data in enumerate(vp8[:30]):
        recorder.write_video(rtp_packet(data, start + i * 3000, VIDEO_TB))
        if i == 25:
            recorder.write_video(rtp_packet(data, start + i * 3000, VIDEO_TB))  # duplicate
        await asyncio.sleep(1 / FPS)
    for i, data in enumerate(vp8[30:]):
        # 10 minutes ahead on the RTP clock, then 5 minutes back, arriving on time
        jump = 600 * 90000 if i < 15 else -300 * 90000
        recorder.write_video(rtp_packet(data, start + jump + (30 + i) * 3000, VIDEO_TB))
        await asyncio.sleep(1 / FPS)
    result = await recorder.close()
    assert result.ok and recorder.duplicates == 1
    assert 1.9 <= result.duration_s <= 2.4
    counts, dts, container = decode_all(result.path)
    assert counts["video"] == 60
    assert all(b > a for a, b in zip(dts["video"], dts["video"][1:], strict=False))
    # across the wrap, frames stay 33 ms apart
    assert dts["video"][21] - dts["video"][19] in (66, 67, 68)
    assert dts["video"][-1] < 3000  # the jump was re-anchored on the arrival clock
    container.close()


async def test_slow_disk_drops_to_the_next_keyframe(tmp_path: Path, vp8: list[bytes]) -> None:
    """The file is a FIFO nobody reads for a while: the writer blocks, the small queue fills,
    write_video never blocks and drops until a keyframe; the file still decodes cleanly."""
    fifo = tmp_path / "slow.webm"
    os.mkfifo(fifo)
    copy = tmp_path / "copy.webm"
    recorder = Recorder(fifo, "video/VP8", None, queue_packets=8)
    asked: list[int] = []
    recorder.want_keyframe = lambda: asked.append(recorder.dropped)

    def drain() -> None:
        with open(fifo, "rb") as src, open(copy, "wb") as dst:
            while chunk := src.read(65536):
                dst.write(chunk)

    reader = threading.Thread(target=drain)
    loop = asyncio.get_running_loop()
    blocked = 0.0
    for i, data in enumerate(vp8):
        t0 = loop.time()
        recorder.write_video(rtp_packet(data, i * 3000, VIDEO_TB))
        blocked = max(blocked, loop.time() - t0)
        if i == 20:
            reader.start()  # the disk wakes up
        await asyncio.sleep(1 / FPS)
    result = await recorder.close()
    reader.join(10)
    assert blocked < 0.01
    assert recorder.dropped > 0
    assert asked and asked[0] == 1  # asked for a keyframe at the first drop of a run
    assert result.ok
    counts, _, container = decode_all(copy)
    # written: what fitted in the queue, then from the next keyframe (30 or 45) on
    assert 0 < counts["video"] < 60
    assert counts["video"] + recorder.dropped == 60
    container.close()


async def test_failing_disk_ends_with_ok_false(tmp_path: Path, vp8: list[bytes]) -> None:
    """/dev/full fails every write with ENOSPC: close() reports it and raises nothing."""
    recorder = Recorder(Path("/dev/full"), "video/VP8", None)
    await play(recorder, vp8, [], pace=0)
    result = await recorder.close()
    assert result == RecordingResult(Path("/dev/full"), result.duration_s, 0, False)
    assert recorder.error is not None


async def test_unwritable_directory(tmp_path: Path, vp8: list[bytes]) -> None:
    (tmp_path / "file").write_bytes(b"x")
    path = tmp_path / "file" / "r.webm"  # a parent that is a file: fails even for root
    recorder = Recorder(path, "video/VP8", None)
    await play(recorder, vp8[:5], [], pace=0)
    result = await recorder.close()
    assert result == RecordingResult(path, result.duration_s, 0, False)
    assert not path.exists()


async def test_close_twice_and_writes_after_close(tmp_path: Path, vp8: list[bytes]) -> None:
    recorder = Recorder(tmp_path / "twice.webm", "video/VP8", None)
    await play(recorder, vp8[:10], [], pace=0)
    first, second = await asyncio.gather(recorder.close(), recorder.close())
    recorder.write_video(rtp_packet(vp8[10], 99, VIDEO_TB))  # ignored
    assert first is second and first.ok
    assert await recorder.close() is first
    counts, _, container = decode_all(first.path)
    assert counts["video"] == 10
    container.close()


async def test_no_keyframe_ever(tmp_path: Path, vp8: list[bytes], opus: list[bytes]) -> None:
    """Only inter frames and audio: nothing can start the file, nothing is left on disk."""
    path = tmp_path / "none.webm"
    recorder = Recorder(path, "video/VP8", "audio/opus")
    await play(recorder, vp8[1:15], opus[:20], pace=0)
    result = await recorder.close()
    assert result == RecordingResult(path, 0.0, 0, False)
    assert not path.exists()
    assert (recorder.before_start, recorder.dropped) == (14 + 20, 0)


async def test_audio_only(tmp_path: Path, opus: list[bytes]) -> None:
    """A presenter without a camera still leaves a playable WebM of the voice."""
    recorder = Recorder(tmp_path / "voice.webm", None, "audio/opus")
    for i, data in enumerate(opus[:50]):
        recorder.write_audio(rtp_packet(data, 5 + i * 960, AUDIO_TB))
        recorder.write_video(rtp_packet(b"\x00", i, VIDEO_TB))  # no video stream: ignored
        await asyncio.sleep(0.02)
    result = await recorder.close()
    assert result.ok and recorder.container == "webm"
    assert 0.9 <= result.duration_s <= 1.2
    counts, _, container = decode_all(result.path)
    assert counts == {"video": 0, "audio": 50}
    assert not container.streams.video
    container.close()


async def test_g711_audio_is_left_out_and_the_video_kept(tmp_path: Path, vp8: list[bytes]
                                                        ) -> None:
    recorder = Recorder(tmp_path / "pcmu.webm", "video/VP8", "audio/PCMU")
    assert recorder.audio_mime is None
    await play(recorder, vp8[:10], [], pace=0)
    recorder.write_audio(rtp_packet(b"\xff" * 160, 0, Fraction(1, 8000)))  # ignored
    result = await recorder.close()
    counts, _, container = decode_all(result.path)
    assert result.ok and counts == {"video": 10, "audio": 0} and not container.streams.audio
    container.close()


def test_refuses_what_it_cannot_record(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="VP9"):
        Recorder(tmp_path / "x", "video/VP9", None)
    with pytest.raises(ValueError, match="PCMU"):
        Recorder(tmp_path / "x", None, "audio/PCMU")
    with pytest.raises(ValueError, match="nothing"):
        Recorder(tmp_path / "x", None, None)


def test_keyframes_read_from_the_bitstream(vp8: list[bytes], h264: list[bytes]) -> None:
    assert [is_keyframe("video/vp8", av.Packet(d)) for d in vp8[:16]] == \
        [True] + [False] * 14 + [True]
    assert [is_keyframe("video/h264", av.Packet(d)) for d in h264[:16]] == \
        [True] + [False] * 14 + [True]
    assert not is_keyframe("video/vp8", av.Packet(b""))


async def test_h264_parameter_sets_ahead_of_the_keyframe(tmp_path: Path, h264: list[bytes]
                                                         ) -> None:
    """An encoder that sends SPS/PPS in an access unit of their own, before an IDR without
    them: the Matroska header still gets them (avcC) and every frame decodes."""
    units = h264[0].split(b"\x00\x00\x01")
    headers = b"".join(b"\x00\x00\x01" + u for u in units[1:] if u and u[0] & 0x1F in (7, 8))
    idr = b"".join(b"\x00\x00\x01" + u for u in units[1:] if u and u[0] & 0x1F not in (7, 8))
    assert headers and idr and not is_keyframe("video/h264", av.Packet(headers))
    recorder = Recorder(tmp_path / "sets.mkv", "video/H264", None)
    recorder.write_video(rtp_packet(headers, 0, VIDEO_TB))
    await play(recorder, [idr, *h264[1:]], [], video_start=3000, pace=0)
    result = await recorder.close()
    assert result.ok and recorder.before_start == 1
    counts, _, container = decode_all(result.path)
    assert counts["video"] == 60
    assert container.streams.video[0].codec_context.extradata[:1] == b"\x01"
    container.close()
