"""Two real server processes sharing Redis: a call between peers on different processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.signaling.conftest import GRACE_SECONDS, connected_pair, until
from tests.support.rtc_client import RtcClient
from yilian.server.core.settings import Settings

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"Yilian listening on (http://\S+)")


def _redis_up() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5):
            return True
    except OSError:
        return False


class ServerProcess:
    """``python -m server.cli serve`` in a child process."""

    def __init__(self, settings: Settings, channel: str, log: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        env = os.environ | {
            "YILIAN_DATA_DIR": str(settings.data_dir),
            "YILIAN_DATABASE_URL": settings.database_url,
            "YILIAN_SECRET_KEY": settings.secret_key,
            "YILIAN_REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
            "YILIAN_RTC_REDIS_CHANNEL": channel,
            "YILIAN_RTC_RESUME_GRACE_SECONDS": str(GRACE_SECONDS),
            "YILIAN_DICOM_PORT": "off",
        } | (extra_env or {})
        self.log = log
        self._stderr = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "yilian.server.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.url = ""

    async def ready(self) -> str:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 60)
        match = READY.search(line.decode())
        assert match, (line, self.log.read_text(errors="replace")[-3000:])
        self.url = match.group(1)
        return self.url

    def stop(self) -> int:
        """SIGINT, like Ctrl-C: the app's cleanup contexts run; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()
        return self.process.returncode


@pytest.fixture
def redis_channel() -> Iterator[str]:
    if not _redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail("CI provides Redis on 127.0.0.1:6379")
        pytest.skip("no Redis on 127.0.0.1:6379")
    yield f"yilian-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def processes(
    settings: Settings, redis_channel: str, tmp_path: Path, server: Any
) -> AsyncIterator[list[ServerProcess]]:
    """Two processes on the test database (the in-process ``server`` logs users in)."""
    async with two_servers(settings, redis_channel, tmp_path) as procs:
        yield procs


@asynccontextmanager
async def two_servers(settings: Settings, channel: str, tmp_path: Path,
                      env: dict[str, str] | None = None) -> AsyncIterator[list[ServerProcess]]:
    """Two ``yilian serve`` processes on the test database and one Redis channel; at the end
    both must exit cleanly with no traceback or destroyed task in their logs."""
    procs = [ServerProcess(settings, channel, tmp_path / f"proc{i}.log", env) for i in (1, 2)]
    try:
        await asyncio.gather(*(p.ready() for p in procs))
        yield procs
    finally:
        # off the loop, together: the in-process server keeps answering while they stop
        codes = await asyncio.gather(*(asyncio.to_thread(p.stop) for p in procs))
    for p, code in zip(procs, codes, strict=True):
        text = p.log.read_text(errors="replace")
        assert code == 0, text[-3000:]
        assert "Traceback" not in text and "Task was destroyed" not in text, text[-3000:]


async def test_call_between_peers_on_different_processes(
    processes: list[ServerProcess], doctors: dict[str, Any], rooms: dict[str, str]
) -> None:
    one, two = processes
    room = rooms["village"]
    expert = RtcClient(one.url, doctors["expert"].token, label="expert@1")
    village = RtcClient(two.url, doctors["village"].token, label="village@2")
    try:
        await expert.connect()
        await village.connect()
        first = await expert.join(room)
        second = await village.join(room)
        # Room state is shared: process 2 knows the peer that joined on process 1.
        assert [p["peer_id"] for p in second["peers"]] == [first["peer_id"]]
        await connected_pair(village, expert, seconds=30)
        await until(lambda: any(e == "peer-joined" for e, _ in expert.events))
        assert (await village.call("chat", {"room": room, "text": "across processes"}))["ok"]
        await until(lambda: any(e == "chat" for e, _ in expert.events))

        # The village doctor's socket drops and comes back on the *other* process
        # (websocket-only clients need no sticky routing): same peer id, no peer-left.
        village.sio.connection_url = one.url
        await village.drop_socket()
        await asyncio.wait_for(village.resumed.wait(), 15)
        resume = next(d for e, d in village.events if e == "resume")
        assert resume["resumed"] is True and resume["peer_id"] == second["peer_id"]
        await asyncio.sleep(GRACE_SECONDS + 0.5)  # process 2's grace timer fires and finds it back
        assert not [d for e, d in expert.events if e == "peer-left"]
        link = expert.links[second["peer_id"]]
        before = link.frames_received
        await until(lambda: link.frames_received >= before + 10)
        assert (await village.call("chat", {"room": room, "text": "back"}))["ok"]
        await until(lambda: sum(e == "chat" for e, _ in expert.events) == 2)
    finally:
        await asyncio.gather(expert.close(), village.close())
