"""A recording plays in Chromium's ``<video>``: WebM with VP8 and Opus, as the replay page
will serve it (skipped without Chromium on a developer machine, a failure on CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.signaling.test_sfu_record import encode_audio, encode_video, play
from yilian.signaling.sfu.record import Recorder

CHROMIUM = Path(os.environ.get("YILIAN_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and os.environ.get("CI") != "true",
                                reason=f"{CHROMIUM} is not installed")

PAGE = """<!doctype html><video id="v" src="recording.webm" muted playsinline></video>"""

PLAY = """async () => {
  const v = document.getElementById("v");
  if (v.readyState < 1) await new Promise((ok, no) => { v.onloadedmetadata = ok; v.onerror = () => no(String(v.error && v.error.message)); });
  await v.play();
  await new Promise((ok) => { v.onended = ok; });
  const q = v.getVideoPlaybackQuality();
  return {duration: v.duration, width: v.videoWidth, height: v.videoHeight, time: v.currentTime,
          frames: q.totalVideoFrames, dropped: q.droppedVideoFrames, corrupted: q.corruptedVideoFrames,
          audio: v.webkitAudioDecodedByteCount, video: v.webkitVideoDecodedByteCount,
          error: v.error ? v.error.code : null};
}"""


async def test_chromium_plays_a_webm_recording_to_the_end(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    recorder = Recorder(tmp_path / "recording.webm", "video/VP8", "audio/opus")
    await play(recorder, encode_video("libvpx", 60), encode_audio(120))
    result = await recorder.close()
    assert result.ok
    (tmp_path / "index.html").write_text(PAGE)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS,
                                           headless=True)
        try:
            page = await browser.new_page()
            await page.goto((tmp_path / "index.html").as_uri())
            seen = await page.evaluate(PLAY)
        finally:
            await browser.close()
    assert seen["error"] is None
    assert (seen["width"], seen["height"]) == (320, 240)
    assert abs(seen["duration"] - result.duration_s) < 0.1, (seen, result)
    assert seen["time"] >= seen["duration"] - 0.05
    assert seen["frames"] >= 55 and seen["corrupted"] == 0, seen
    assert seen["audio"] > 0 and seen["video"] > 0, seen
