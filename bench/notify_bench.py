"""Notification benchmark: one alert to 1,000 connected ``/notify`` clients, Yilian against a
bare python-socketio server emitting the same payload to the same clients.

Each server runs in its own process (bench/notify_harness.py). N clients connect (a minimal
engine.io websocket client, as the signalling bench uses, so the figures compare servers);
then, A times, the server is told to send one alert to all N users and each client notes when
its copy arrives. Yilian does what a green-channel referral does: one write transaction adds
N inbox rows through ``core.notify.send``; after COMMIT ``Database.notify_sink`` hands them to
``/notify``, which emits each to its user's room. The clock starts when the committed rows
reach the sink (the bare server: just before its first emit) and stops at each client's
receipt; both are wall-clock times on one machine. The first alert warms up and is not counted.

    python bench/notify_bench.py                 # 1,000 clients, 5 alerts
    python bench/notify_bench.py --quick         # 50 clients, 2 alerts (the smoke test)
    python bench/notify_bench.py --redis redis://127.0.0.1:6379/0   # through the Redis manager
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "bench" / "notify_harness.py"
NOTIFICATION = '42/notify,["notification",'


class Listener:
    """One ``/notify`` socket over a bare aiohttp websocket; notes when each alert arrives."""

    def __init__(self) -> None:
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.received: dict[int, float] = {}  # alert (resource id) -> arrival (unix time)
        self.arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, http: aiohttp.ClientSession, base_url: str, auth: dict[str, Any]
                      ) -> None:
        url = base_url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await http.ws_connect(url, max_msg_size=0)
        assert (await self.ws.receive_str()).startswith("0{")
        await self.ws.send_str("40/notify," + json.dumps(auth))
        reply = await asyncio.wait_for(self.ws.receive_str(), 30)
        if not reply.startswith("40/notify,"):
            raise ConnectionError(reply)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            at = time.time()  # before any parsing
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            text: str = msg.data
            if text == "2":
                await self.ws.send_str("3")
            elif text.startswith(NOTIFICATION):
                data = json.loads(text[len("42/notify,"):])[1]
                self.received[data["resource"]["id"]] = at
                self.arrived.set()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


class Harness:
    """A server process from bench/notify_harness.py, told what to do over stdin."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = list(args), env, log
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> str:
        import os

        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(HARNESS), *self.args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=self.log.open("wb"), cwd=ROOT,
            env=os.environ | self.env)
        line = await self._line(120)
        if not line.startswith("listening on "):
            raise RuntimeError(f"harness {self.args[0]}: {line!r}\n{self.tail()}")
        self.url = line.split()[-1]
        return self.url

    async def _line(self, seconds: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), seconds)
        if not raw:
            raise RuntimeError(f"harness {self.args[0]} exited\n{self.tail()}")
        return raw.decode().strip()

    async def alert(self, k: int) -> float:
        """Send alert ``k``; returns the server's start time for it (unix time)."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"alert {k}\n".encode())
        await self.proc.stdin.drain()
        while not (line := await self._line(60)).startswith("commit "):
            pass
        return float(line.split()[1])

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # EOF: the harness shuts its app down
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def _gather_limited(coros: list[Any], limit: int = 50) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def measure(harness: Harness, auths: list[dict[str, Any]], alerts: int) -> list[float]:
    """Connect a listener per auth, send ``alerts`` + 1 alerts (the first warms up); the
    latencies (seconds) of every counted delivery."""
    listeners = [Listener() for _ in auths]
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            await _gather_limited([c.connect(http, harness.url, a)
                                   for c, a in zip(listeners, auths, strict=True)])
            await asyncio.sleep(1.0)  # the connect-time traffic (unread counts) settles
            for k in range(1, alerts + 2):
                started = await harness.alert(k)
                async with asyncio.timeout(60):
                    while missing := [c for c in listeners if k not in c.received]:
                        missing[0].arrived.clear()
                        await missing[0].arrived.wait()
                if k > 1:
                    latencies += [c.received[k] - started for c in listeners]
                await asyncio.sleep(0.5)
        finally:
            await asyncio.gather(*(c.close() for c in listeners))
    return latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(clients: int, alerts: int, redis_url: str) -> int:
    env = {"YILIAN_REDIS_URL": redis_url} if redis_url else {}
    with tempfile.TemporaryDirectory(prefix="notify-bench-") as tmp:
        work = Path(tmp)
        yilian = Harness(["yilian", str(work / "data"), str(clients), str(work / "tokens.json")],
                         env, work / "yilian.log")
        try:
            await yilian.start()
            tokens = json.loads((work / "tokens.json").read_text())
            ours = await measure(yilian, [{"token": t} for t in tokens], alerts)
        finally:
            await yilian.stop()
        bare = Harness(["bare", str(clients)], env, work / "bare.log")
        try:
            await bare.start()
            theirs = await measure(bare, [{"user": n} for n in range(clients)], alerts)
        finally:
            await bare.stop()

    via = " through Redis" if redis_url else ""
    print(f"notify bench: {clients} /notify clients, {alerts} alerts to all of them "
          f"(one room per user{via}); latency from commit to each client's receipt")
    rows = (("yilian /notify (commit -> client)", ours), ("bare python-socketio emit", theirs))
    for name, values in rows:
        print(f"  {name:34s}: p50 {_pct(values, .5):7.1f} ms  p99 {_pct(values, .99):7.1f} ms"
              f"  max {max(values) * 1000:7.1f} ms  ({len(values)} deliveries)")
    p99_ours, p99_bare = _pct(ours, .99), _pct(theirs, .99)
    ratio = p99_bare / p99_ours if p99_ours else float("inf")
    print(f"  p99 target < 250 ms: {'met' if p99_ours < 250 else 'MISSED'}; "
          f"speed yilian/bare (bare p99 / yilian p99) = {ratio:.2f} (target >= 0.5)")
    print(f"  mean yilian {statistics.fmean(ours) * 1000:.1f} ms, "
          f"bare {statistics.fmean(theirs) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=5)
    parser.add_argument("--redis", default="", help="a Redis URL: both servers use the "
                        "Redis manager, as several Yilian processes do")
    parser.add_argument("--quick", action="store_true", help="50 clients, 2 alerts")
    ns = parser.parse_args()
    if ns.quick:
        ns.clients, ns.alerts = 50, 2
    sys.exit(asyncio.run(main(ns.clients, ns.alerts, ns.redis)))
