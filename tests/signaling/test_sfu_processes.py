"""A teaching broadcast across two server processes sharing Redis: the presenter publishes on
one, a viewer whose socket is on the other subscribes, answers and chooses its layer there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.signaling.conftest import until
from tests.signaling.test_redis_processes import (  # noqa: F401 - fixtures
    redis_channel,
    two_servers,
)
from tests.signaling.test_sfu_rtc import schedule
from tests.support.broadcast_peer import TeachingClient
from yilian.server.core.settings import Settings


@pytest.fixture
async def relay_processes(settings: Settings, redis_channel: str,  # noqa: F811
                          tmp_path: Path, server: Any) -> AsyncIterator[list[str]]:
    """Two ``yilian serve`` processes (the relay is on in every server) on the test database,
    started before anyone logs in; both must exit cleanly."""
    async with two_servers(settings, redis_channel, tmp_path) as procs:
        yield [p.url for p in procs]


async def test_a_viewer_on_another_process_watches_the_broadcast(
    relay_processes: list[str], doctors: dict[str, Any]
) -> None:
    one, two = relay_processes
    presenter = TeachingClient(one, doctors["expert"].token or "", "expert@1")
    viewer = TeachingClient(two, doctors["village"].token or "", "village@2")
    try:
        room = f"teaching:{await schedule(doctors)}"
        await presenter.connect()
        await viewer.connect()
        assert (await presenter.join(room))["host"] is True
        assert (await viewer.join(room))["live"] is False
        assert (await presenter.publish()) == {"ok": True}
        await until(lambda: bool(viewer.seen("broadcast")), 10)
        assert viewer.seen("broadcast")[0] == {"room": room, "live": True}
        assert (await viewer.watch()) == {"ok": True, "layer": "high"}
        assert viewer.viewer is not None
        await asyncio.wait_for(viewer.viewer.first_frame.wait(), 10)
        assert viewer.viewer.last_size == (640, 480)
        assert await viewer.call("layer", {"room": room, "layer": "low"}) == {
            "ok": True, "layer": "low"}
        await until(lambda: viewer.viewer is not None
                    and viewer.viewer.last_size == (320, 240), 10)
        await until(lambda: bool(presenter.seen("viewers"))
                    and presenter.seen("viewers")[-1]["low"] == 1, 5)
        # The presenter leaves: the broadcast ends for the viewer on the other process.
        assert (await presenter.call("leave", {"room": room}))["ok"]
        await until(lambda: {"room": room, "live": False} in viewer.seen("broadcast"), 10)
        assert (await viewer.call("subscribe", {"room": room}))["error"]["code"] == "not_live"
    finally:
        await asyncio.gather(presenter.close(), viewer.close())
