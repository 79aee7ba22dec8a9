"""The recorder behind a real broadcast: an aiortc presenter publishes through ``Broadcast``,
whose pass-through receiver hands the reassembled packets to ``Recorder``; the file decodes
with PyAV end to end."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import av
import pytest

from tests.signaling.conftest import until
from tests.support.broadcast_peer import BroadcastPresenter
from yilian.signaling.sfu.broadcast import Broadcast, BroadcastConfig
from yilian.signaling.sfu.record import Recorder, RecordingResult

SECONDS = 3.0


@pytest.mark.parametrize(("codec", "container"), [("video/VP8", "webm"),
                                                  ("video/H264", "mkv")])
async def test_a_broadcast_records_what_it_forwards(codec: str, container: str,
                                                    tmp_path: Path) -> None:
    made: list[Recorder] = []

    def recorder(video_mime: str, audio_mime: str | None) -> Recorder:
        made.append(Recorder(tmp_path / f"session.{container}", video_mime, audio_mime))
        return made[-1]

    broadcast = Broadcast("teaching:7", BroadcastConfig(ice_servers=[]), recorder=recorder)
    presenter = BroadcastPresenter(codec=codec)
    try:
        await presenter.accept(await broadcast.publish(await presenter.offer()))
        await until(lambda: broadcast.recorder is not None)
        started = time.monotonic()
        await asyncio.sleep(SECONDS)
    finally:
        await broadcast.close()
        elapsed = time.monotonic() - started
        await presenter.close()
    assert [r.container for r in made] == [container]
    result = broadcast.recording_result
    assert isinstance(result, RecordingResult) and result.ok, made[0].error
    assert result.size == result.path.stat().st_size > 2_000
    assert SECONDS - 0.6 <= result.duration_s <= elapsed + 0.2
    frames = {"video": 0, "audio": 0}
    with av.open(str(result.path)) as file:
        video = file.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (640, 480)
        assert file.streams.audio[0].codec_context.name == "opus"
        for frame in file.decode(video, file.streams.audio[0]):
            frames["video" if isinstance(frame, av.VideoFrame) else "audio"] += 1
    # aiortc's synthetic camera runs at 30 fps and Opus at 50 packets/s (the recording
    # starts at the keyframe asked for when it began)
    assert frames["video"] >= result.duration_s * 30 * 0.8, frames
    assert frames["audio"] >= result.duration_s * 50 * 0.8, frames
    assert made[0].dropped == 0
