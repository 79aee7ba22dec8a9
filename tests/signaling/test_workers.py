"""``yilian serve --workers 2``: two processes on one port (SO_REUSEPORT) behind one ready URL;
sockets spread over both still hear what a request through either committed; long polling is
refused (its requests could reach the other process); SIGINT stops both cleanly. Without Redis
the option is refused."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.server.live import READY
from tests.signaling.test_redis_processes import (
    REDIS_HOST,
    REDIS_PORT,
    ROOT,
    redis_channel,  # noqa: F401
)
from tests.support.notify_client import NotifyClient
from yilian.server.core.settings import Settings


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return os.environ | {
        "YILIAN_DATA_DIR": str(settings.data_dir), "YILIAN_DATABASE_URL": settings.database_url,
        "YILIAN_SECRET_KEY": settings.secret_key, "YILIAN_DICOM_PORT": "off",
        "YILIAN_REDIS_URL": "",
    } | extra


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _start_workers(settings: Settings, channel: str, log: Path) -> subprocess.Popen[str]:
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "yilian.server.cli", "serve", "--host", "127.0.0.1",
             "--port", "0", "--workers", "2"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True,
            env=_env(settings, YILIAN_REDIS_URL=f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
                     YILIAN_RTC_REDIS_CHANNEL=channel))


def test_workers_need_redis(settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "yilian.server.cli", "serve", "--port", "0", "--workers", "2"],
        capture_output=True, text=True, cwd=ROOT, env=_env(settings), timeout=60)
    assert result.returncode == 2 and "YILIAN_REDIS_URL" in result.stderr, result.stderr


async def test_two_workers_share_the_port_and_the_notifications(
    settings: Settings, redis_channel: str, tmp_path: Path, api: Any  # noqa: F811
) -> None:
    log = tmp_path / "workers.log"
    proc = _start_workers(settings, redis_channel, log)
    sockets: list[NotifyClient] = []
    try:
        assert proc.stdout is not None
        urls = []
        for _ in range(2):  # one ready line per worker, the same address
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
            match = READY.search(line)
            assert match, (line, log.read_text(errors="replace")[-3000:])
            urls.append(match.group(1))
        assert urls[0] == urls[1]
        base = urls[0]
        assert len(_children(proc.pid)) == 2

        village, expert = await api.login("village"), await api.login("expert")
        # Eight sockets of the expert: the kernel spreads new connections over both workers.
        sockets = [NotifyClient(base, expert.token, f"expert#{i}") for i in range(8)]
        for s in sockets:
            await s.connect()
            await s.wait_for("unread")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/socket.io/?EIO=4&transport=polling") as resp:
                assert resp.status == 400  # long polling: websockets only
            statuses = await asyncio.gather(*(_status(http, f"{base}/healthz") for _ in range(20)))
            assert statuses == [200] * 20
            async with http.post(f"{base}/api/patients", json={"name": "Wu Ping", "sex": "male"},
                                 headers={"Authorization": f"Bearer {village.token}"}) as resp:
                assert resp.status == 201
                patient = await resp.json()
            async with http.post(f"{base}/api/consultations", json={
                "patient_id": patient["id"], "kind": "imaging", "urgency": "emergency",
                "question": "Pneumothorax?", "expert_id": expert.user["id"]},
                    headers={"Authorization": f"Bearer {village.token}"}) as resp:
                assert resp.status == 201
                c = await resp.json()
        for s in sockets:  # every socket, on whichever worker holds it
            [n] = await s.wait_for("notification", seconds=10)
            assert n["resource"] == {"type": "consultation", "id": c["id"]}
    finally:
        await asyncio.gather(*(s.close() for s in sockets))
        proc.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(proc.wait, 30)
        if proc.stdout is not None:
            proc.stdout.close()
    text = log.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]


async def _status(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url) as resp:
        return resp.status
