"""Signalling benchmark: Yilian's /rtc against a bare aiohttp WebSocket relay, and call setup
through the server against the same two aiortc peers connected directly in-process.

(a) Relay: R rooms with two clients each (500 rooms = 1,000 clients by default), all connected
    to one server process. In every room one ``signal`` (an ICE candidate, ~200 bytes) is in
    flight at a time, bouncing between the two peers; we count relayed messages per second
    and the one-way latency of each. The same clients, speaking plain JSON, then drive the
    bare relay (bench/bare_ws_relay.py) in its own process. Both sides use the same minimal
    client (bench/rtc_wire.py), so the figures compare the servers.
(b) Setup: time from the newcomer's ``join`` until both peers have received a video frame,
    through the running server, against two PeerLinks handing each other their descriptions
    directly in-process. Median of N runs, alternating.

    python bench/signalling_bench.py                  # 500 rooms, 10 s, 10 setups
    python bench/signalling_bench.py --smoke          # a few seconds, for the test suite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)] if str(ROOT) not in sys.path else []

from bench.api_bench import start, stop  # noqa: E402
from bench.rtc_wire import WireClient  # noqa: E402
from tests.support.rtc_client import RtcClient  # noqa: E402
from tests.support.rtc_peer import PeerLink  # noqa: E402
from yilian.server.clinic.models import Consultation, Patient  # noqa: E402
from yilian.server.core.auth import issue_token  # noqa: E402
from yilian.server.core.db import Database, utcnow  # noqa: E402
from yilian.server.core.models import User  # noqa: E402
from yilian.server.core.settings import Settings  # noqa: E402
from yilian.server.demo import load_demo  # noqa: E402
from yilian.server.schema import migrate  # noqa: E402

SECRET = "signalling-bench-secret"
CANDIDATE = (
    "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0 "
    "generation 0 ufrag 4ZcD network-cost 999 ts "
)


async def prepare(data_dir: Path, rooms: int) -> tuple[dict[str, str], list[int]]:
    """Demo data plus ``rooms`` accepted consultations between the village doctor and the
    expert; tokens for both."""
    settings = Settings.defaults().with_overrides(data_dir=data_dir, secret_key=SECRET,
                                                 dicom_port="off")
    db = Database(settings.resolved_database_url)
    await migrate(db)
    await load_demo(db, settings)
    async with db.write() as session:
        found = await session.execute(select(User).where(User.username.in_(["village", "expert"])))
        users = {u.username: u for u in found.scalars()}
        village, expert = users["village"], users["expert"]
        patient_id = (
            await session.execute(
                select(Patient.id).where(Patient.institution_id == village.institution_id).limit(1)
            )
        ).scalar_one()
        now = utcnow()
        rows = [
            Consultation(
                patient_id=patient_id,
                requester_id=village.id,
                requester_institution_id=village.institution_id,
                kind="video",
                urgency="routine",
                question=f"benchmark room {i}",
                status="accepted",
                expert_id=expert.id,
                deadline=now + timedelta(days=1),
                created_at=now,
                updated_at=now,
                events=[],
                studies=[],
            )
            for i in range(rooms)
        ]
        session.add_all(rows)
        await session.flush()
        ids = [c.id for c in rows]
    tokens = {name: await issue_token(db, users[name], 6 * 3600) for name in ("village", "expert")}
    await db.close()
    return tokens, ids


class Relay:
    """Closed-loop ping-pong in every room; collects one-way latencies in a time window."""

    def __init__(self, server_pid: int) -> None:
        self.window = (float("inf"), float("inf"))
        self.latencies: list[float] = []
        self.server_pid = server_pid
        self.cpu = (0.0, 0.0)  # server, client CPU-seconds per second of the window

    def record(self, sent_at: float) -> None:
        now = time.perf_counter()
        if self.window[0] <= now <= self.window[1]:
            self.latencies.append(now - sent_at)

    async def run(
        self, start_all: Callable[[], Awaitable[None]], warmup: float, seconds: float
    ) -> tuple[float, list[float], tuple[float, float]]:
        begin = time.perf_counter()
        self.window = (begin + warmup, begin + warmup + seconds)
        await start_all()
        await asyncio.sleep(warmup)
        before = (process_cpu(self.server_pid), process_cpu(os.getpid()))
        await asyncio.sleep(seconds)
        after = (process_cpu(self.server_pid), process_cpu(os.getpid()))
        self.cpu = ((after[0] - before[0]) / seconds, (after[1] - before[1]) / seconds)
        return len(self.latencies) / seconds, self.latencies, self.cpu


def process_cpu(pid: int) -> float:
    """User plus system CPU-seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _candidate() -> dict[str, Any]:
    return {"candidate": CANDIDATE + repr(time.perf_counter()), "sdpMid": "0", "sdpMLineIndex": 0}


def _sent_at(candidate: dict[str, Any]) -> float:
    return float(candidate["candidate"].rsplit(" ", 1)[1])


async def _gather_limited(coros: list[Awaitable[Any]], limit: int = 50) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[Any]) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def relay_yilian(
    url: str, server_pid: int, tokens: dict[str, str], ids: list[int], warmup: float, seconds: float
) -> tuple[float, list[float], tuple[float, float]]:
    relay = Relay(server_pid)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        clients: list[WireClient] = []
        peer_of: dict[WireClient, str] = {}

        def make() -> WireClient:
            client: WireClient

            async def on_event(event: str, data: Any) -> None:
                if event == "signal":
                    relay.record(_sent_at(data["candidate"]))
                    await client.emit("signal", {"to": data["from"], "candidate": _candidate()})

            client = WireClient(on_event)
            clients.append(client)
            return client

        pairs = [(make(), make(), room_id) for room_id in ids]

        async def join(a: WireClient, b: WireClient, room_id: int) -> None:
            await a.connect(http, url, tokens["expert"])
            await b.connect(http, url, tokens["village"])
            for c in (a, b):
                ack = await c.call("join", {"room": f"consultation:{room_id}"})
                assert ack["ok"], ack
                peer_of[c] = ack["peer_id"]

        await _gather_limited([join(a, b, r) for a, b, r in pairs])

        async def kick() -> None:
            for a, b, _ in pairs:
                await a.emit("signal", {"to": peer_of[b], "candidate": _candidate()})

        try:
            return await relay.run(kick, warmup, seconds)
        finally:
            await asyncio.gather(*(c.close() for c in clients))


async def relay_bare(
    url: str, server_pid: int, rooms: int, warmup: float, seconds: float
) -> tuple[float, list[float], tuple[float, float]]:
    relay = Relay(server_pid)
    ws_url = url.replace("http", "ws", 1)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        sockets: dict[str, aiohttp.ClientWebSocketResponse] = {}

        async def connect(room: int, side: str) -> None:
            sockets[f"{room}{side}"] = await http.ws_connect(
                f"{ws_url}/ws?room={room}&peer={room}{side}"
            )

        await _gather_limited([connect(r, s) for r in range(rooms) for s in "ab"])

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return
                data = json.loads(msg.data)
                relay.record(_sent_at(data["candidate"]))
                await ws.send_json({"to": data["from"], "candidate": _candidate()})

        readers = [asyncio.create_task(read(ws)) for ws in sockets.values()]

        async def kick() -> None:
            for r in range(rooms):
                await sockets[f"{r}a"].send_json({"to": f"{r}b", "candidate": _candidate()})

        try:
            return await relay.run(kick, warmup, seconds)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets.values()))
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


async def _first_frames(a: PeerLink, b: PeerLink) -> None:
    await asyncio.gather(a.first_frame.wait(), b.first_frame.wait())


async def setup_through_server(url: str, tokens: dict[str, str], room: str) -> float:
    expert = RtcClient(url, tokens["expert"], label="expert")
    village = RtcClient(url, tokens["village"], label="village")
    try:
        await expert.connect()
        await village.connect()
        assert (await expert.join(room))["ok"]
        started = time.perf_counter()
        assert (await village.join(room))["ok"]
        links = await asyncio.wait_for(
            asyncio.gather(village.first_link(), expert.first_link()), 30
        )
        await asyncio.wait_for(_first_frames(*links), 30)
        return time.perf_counter() - started
    finally:
        await village.close()
        await expert.close()


async def setup_direct() -> float:
    links: dict[str, PeerLink] = {}

    def sender(other: str) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
        async def send(_: str, payload: dict[str, Any]) -> None:
            await links[other].on_signal(payload)

        return send

    links["a"] = PeerLink("b", polite=True, ice_servers=[], send=sender("b"), label="a")
    links["b"] = PeerLink("a", polite=False, ice_servers=[], send=sender("a"), label="b")
    try:
        started = time.perf_counter()
        await links["a"].negotiate()
        await asyncio.wait_for(_first_frames(links["a"], links["b"]), 30)
        return time.perf_counter() - started
    finally:
        await asyncio.gather(*(link.close() for link in links.values()))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="yilian-sigbench-") as tmp:
        tokens, ids = await prepare(Path(tmp), args.rooms + 1)
        env = {"YILIAN_DATA_DIR": tmp, "YILIAN_SECRET_KEY": SECRET, "YILIAN_DICOM_PORT": "off"}
        yilian, url = start(
            [sys.executable, "-m", "yilian.server.cli", "--log-level", "WARNING", "serve", "--port", "0"],
            env,
        )
        bare, bare_url = start([sys.executable, str(ROOT / "bench" / "bare_ws_relay.py")])
        try:
            clients = 2 * args.rooms
            print(
                f"(a) signal relay: {args.rooms} rooms / {clients} clients, one message in flight per room, {args.seconds:g} s"
            )
            rate_y, lat_y, cpu_y = await relay_yilian(
                url, yilian.pid, tokens, ids[:-1], args.warmup, args.seconds
            )
            print(
                f"    yilian /rtc (socket.io) : {rate_y:8.0f} msg/s   p50 {pct(lat_y, 0.5):6.2f} ms   p99 {pct(lat_y, 0.99):6.2f} ms   CPU server {cpu_y[0]:.2f} / clients {cpu_y[1]:.2f} cores"
            )
            rate_b, lat_b, cpu_b = await relay_bare(
                bare_url, bare.pid, args.rooms, args.warmup, args.seconds
            )
            print(
                f"    bare aiohttp WebSocket  : {rate_b:8.0f} msg/s   p50 {pct(lat_b, 0.5):6.2f} ms   p99 {pct(lat_b, 0.99):6.2f} ms   CPU server {cpu_b[0]:.2f} / clients {cpu_b[1]:.2f} cores"
            )
            print(f"    throughput yilian/bare = {rate_y / rate_b:.2f} (target >= 0.5)")

            room = f"consultation:{ids[-1]}"
            await setup_through_server(url, tokens, room)  # warm both paths once
            await setup_direct()
            through, direct = [], []
            for _ in range(args.setup_runs):
                through.append(await setup_through_server(url, tokens, room))
                direct.append(await setup_direct())
            t_med, d_med = statistics.median(through), statistics.median(direct)
            print(
                f"(b) call setup, join -> first video frame on both sides, median of {args.setup_runs}"
            )
            print(
                f"    through yilian          : {t_med * 1000:8.1f} ms   (min {min(through) * 1000:.1f}, max {max(through) * 1000:.1f})"
            )
            print(
                f"    direct, in-process      : {d_med * 1000:8.1f} ms   (min {min(direct) * 1000:.1f}, max {max(direct) * 1000:.1f})"
            )
            print(f"    setup yilian/direct = {t_med / d_med:.2f} (target < 1.5)")
        finally:
            stop(yilian)
            stop(bare)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--setup-runs", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="20 rooms, 1 s, 2 setups")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rooms, args.seconds, args.warmup, args.setup_runs = 20, 1.0, 0.3, 2
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
