"""Booking-flow throughput and latency: Yilian against a bare aiohttp baseline, same run.

Each simulated doctor repeats: list cardiology experts -> list an expert's free slots ->
book one (POST /api/consultations) -> the expert accepts it. Both servers run as separate
processes on loopback; the client drives N concurrent doctors against each in turn.

    python bench/api_bench.py --clients 16 --flows 300          # SQLite
    python bench/api_bench.py --database-url postgresql+asyncpg://postgres@127.0.0.1/test
    python bench/api_bench.py --quick                            # smoke run
    python bench/api_bench.py --statements   # one client: SQL statements and ms per step
    python bench/api_bench.py --profile      # one client: server CPU per flow, by layer
    python bench/api_bench.py --workers 2 --database-url …   # several processes, one port
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"(?:Yilian )?listening on (http://\S+)")
STEPS = ("experts", "slots", "book", "accept")


def start(cmd: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=os.environ | (env or {}), cwd=ROOT)
    assert proc.stdout is not None
    for line in proc.stdout:
        m = READY.search(line)
        if m:
            # Keep draining the output so a chatty server never blocks on a full pipe.
            threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
            return proc, m.group(1)
    raise RuntimeError(f"{cmd[:4]} exited with {proc.wait()} before it was ready")


def _drain(stream: Any) -> None:
    for line in stream:
        if "Traceback" in line or "ERROR" in line or "Error" in line:
            print("server:", line.rstrip(), file=sys.stderr)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


class Flow:
    """One server under test plus the tokens and pacing of the flow against it."""

    def __init__(self, base: str, tokens: dict[str, str], experts: dict[int, str],
                 patients: dict[str, int]) -> None:
        self.base, self.tokens, self.experts, self.patients = base, tokens, experts, patients
        self.latency: dict[str, list[float]] = defaultdict(list)
        #: (step, wall-clock start, end) of each call, when a list is set (--statements)
        self.spans: list[tuple[str, float, float]] | None = None
        self.conflicts = 0
        self.errors = 0

    async def call(self, http: aiohttp.ClientSession, step: str, method: str, path: str,
                   token: str, body: Any = None) -> tuple[int, Any]:
        t0 = time.perf_counter()
        async with http.request(method, self.base + path, json=body,
                                headers={"Authorization": f"Bearer {token}"}) as resp:
            data = await resp.json()
            status = resp.status
        elapsed = time.perf_counter() - t0
        self.latency[step].append(elapsed)
        if self.spans is not None:
            end = time.time()
            self.spans.append((step, end - elapsed, end))
        return status, data

    async def once(self, http: aiohttp.ClientSession, doctor: str) -> bool:
        token = self.tokens[doctor]
        _, experts = await self.call(http, "experts", "GET",
                                     "/api/experts?specialty=cardiology", token)
        expert = random.choice([e for e in experts if e["id"] in self.experts])
        # Doctors look at a two-week window somewhere in the next seven weeks.
        start = datetime.now(UTC) + timedelta(days=random.randrange(0, 42))
        window = urlencode({"status": "free", "from": start.isoformat(),
                            "to": (start + timedelta(days=14)).isoformat()})
        _, slots = await self.call(http, "slots", "GET",
                                   f"/api/experts/{expert['id']}/slots?{window}", token)
        if not slots:
            return False
        slot = random.choice(slots[:40])
        status, c = await self.call(http, "book", "POST", "/api/consultations", token, {
            "patient_id": self.patients[doctor], "kind": "video", "urgency": "routine",
            "question": "benchmark", "expert_id": expert["id"], "slot_id": slot["id"]})
        if status == 409:
            self.conflicts += 1
            return False
        if status != 201:
            self.errors += 1
            return False
        status, _ = await self.call(http, "accept", "POST", f"/api/consultations/{c['id']}/accept",
                                    self.tokens[self.experts[expert["id"]]], {})
        if status != 200:
            self.errors += 1
        return status == 200


async def drive(flow: Flow, clients: int, flows: int) -> float:
    """Run ``flows`` completed bookings with ``clients`` concurrent doctors; seconds taken."""
    done = 0
    doctors = list(flow.patients)
    connector = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def worker(i: int) -> None:
            nonlocal done
            while done < flows:
                if await flow.once(http, doctors[i % len(doctors)]):
                    done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        return time.perf_counter() - t0


async def login(base: str, username: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.post(
        base + "/api/auth/login", json={"username": username, "password": "yilian-demo"}
    ) as resp:
        return await resp.json()


async def prepare(base: str) -> Flow:
    """Log in the doctors and both cardiologists; register a patient per doctor."""
    tokens, patients, experts = {}, {}, {}
    for doctor in ("village", "township"):
        tokens[doctor] = (await login(base, doctor))["token"]
        async with aiohttp.ClientSession() as http, http.post(
            base + "/api/patients", json={"name": "Bench Patient", "sex": "female"},
            headers={"Authorization": f"Bearer {tokens[doctor]}"}) as resp:
            patients[doctor] = (await resp.json())["id"]
    for username in ("expert", "county"):
        body = await login(base, username)
        tokens[username] = body["token"]
        experts[body["user"]["id"]] = username
    return Flow(base, tokens, experts, patients)


async def record_responses(flow: Flow) -> dict[str, Any]:
    """One real flow's response bodies, for the baseline to serve."""
    recorded: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        tok = flow.tokens["village"]
        _, recorded["experts"] = await flow.call(http, "x", "GET",
                                                 "/api/experts?specialty=cardiology", tok)
        eid = next(e["id"] for e in recorded["experts"] if e["id"] in flow.experts)
        _, recorded["slots"] = await flow.call(http, "x", "GET",
                                               f"/api/experts/{eid}/slots?status=free", tok)
        _, recorded["book"] = await flow.call(http, "x", "POST", "/api/consultations", tok, {
            "patient_id": flow.patients["village"], "kind": "video", "question": "record",
            "expert_id": eid, "slot_id": recorded["slots"][-1]["id"]})
        _, recorded["accept"] = await flow.call(
            http, "x", "POST", f"/api/consultations/{recorded['book']['id']}/accept",
            flow.tokens[flow.experts[eid]], {})
    flow.latency.clear()
    return recorded


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def report(name: str, flow: Flow, seconds: float, flows: int) -> dict[str, float]:
    all_lat = [v for step in STEPS for v in flow.latency[step]]
    row = {"flows_s": flows / seconds, "req_s": len(all_lat) / seconds,
           "p50": pct(all_lat, 50), "p99": pct(all_lat, 99)}
    steps = "  ".join(f"{s} p50 {pct(flow.latency[s], 50):.1f}/p99 {pct(flow.latency[s], 99):.1f}"
                      for s in STEPS if flow.latency[s])
    print(f"{name:<22} {row['flows_s']:8.1f} {row['req_s']:8.1f} {row['p50']:8.2f} "
          f"{row['p99']:8.2f}   conflicts {flow.conflicts}, errors {flow.errors}")
    print(f"{'':<22} ms by step: {steps}")
    return row


async def _pg(url: str, sql: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = await asyncpg.connect(user=u.username or "postgres", host=u.host or "127.0.0.1",
                                 port=u.port or 5432, database=u.database, password=u.password)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def scratch_database(url: str) -> str:
    """A fresh PostgreSQL database beside ``url``'s, so the bench never touches real data."""
    from sqlalchemy.engine import make_url

    name = f"yilian_bench_{os.getpid()}"
    await _pg(url, f'CREATE DATABASE "{name}"')
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str, scratch: str) -> None:
    from sqlalchemy.engine import make_url

    await _pg(url, f'DROP DATABASE IF EXISTS "{make_url(scratch).database}" WITH (FORCE)')


@asynccontextmanager
async def demo_server(args: argparse.Namespace, data_dir: Path,
                      env: dict[str, str] | None = None,
                      procs: list[subprocess.Popen[str]] | None = None) -> AsyncIterator[str]:
    """A ``yilian demo`` process on a free port (on a scratch PostgreSQL database with
    --database-url); yields its base URL (the process appended to ``procs``), stops it and
    drops the database afterwards."""
    cmd = [sys.executable, "-m", "yilian.server.cli", "--log-level", "WARNING", "demo", "--port", "0",
           "--data-dir", str(data_dir), "--dicom-port", "off"]
    scratch = await scratch_database(args.database_url) if args.database_url else ""
    if scratch:
        cmd += ["--database-url", scratch]
    server_env = {"YILIAN_LOGIN_ATTEMPTS_PER_MINUTE": "100000"}
    if args.workers > 1:
        cmd += ["--workers", str(args.workers)]
        server_env |= {"YILIAN_REDIS_URL": args.redis_url,
                       "YILIAN_RTC_REDIS_CHANNEL": f"yilian-bench-{os.getpid()}"}
    proc, base = start(cmd, server_env | (env or {}))
    if procs is not None:
        procs.append(proc)
    try:
        yield base
    finally:
        stop(proc)
        if scratch:
            await drop_database(args.database_url, scratch)


async def statements(args: argparse.Namespace) -> int:
    """One doctor, a few flows, against a server that logs every SQL statement it runs
    (``bench/sqlcount``): per step, the time taken and the statements it ran."""
    data_dir = Path(tempfile.mkdtemp(prefix="yilian-bench-"))
    sql_log = data_dir / "statements.log"
    async with demo_server(args, data_dir,
                           _hooks_env("sqlcount", YILIAN_BENCH_SQL_LOG=str(sql_log))) as base:
        flow = await prepare(base)
        async with aiohttp.ClientSession() as http:
            for _ in range(args.flows):
                flow.spans = []
                await flow.once(http, "village")
        await asyncio.sleep(0.5)  # the audit log's buffered rows are written off the request
    rows = [line.split(" ", 1) for line in sql_log.read_text().splitlines()]
    db = "PostgreSQL" if args.database_url else "SQLite"
    print(f"Statements per step of the last of {args.flows} flows (one client, {db}):")
    for step, t0, t1 in flow.spans or []:
        ran = [text for at, text in rows if t0 <= float(at) <= t1]
        print(f"{step:<8} {1000 * (t1 - t0):6.1f} ms  {len(ran):3d} statements")
        for text in ran:
            print(f"           {text}")
    return 0


def _hooks_env(folder: str, **env: str) -> dict[str, str]:
    """``env`` plus ``bench/<folder>`` first on the server's PYTHONPATH (its sitecustomize)."""
    return env | {"PYTHONPATH": os.pathsep.join(filter(None, [
        str(ROOT / "bench" / folder), os.environ.get("PYTHONPATH")]))}


async def profile(args: argparse.Namespace) -> int:
    """One doctor, ``--flows`` flows after a warm-up, against a server that adds up its event
    loop's CPU time per layer (``bench/cpuhooks``): where a booking flow's CPU goes."""
    data_dir = Path(tempfile.mkdtemp(prefix="yilian-bench-"))
    cpu_log = data_dir / "cpu.json"
    procs: list[subprocess.Popen[str]] = []
    async with demo_server(args, data_dir, _hooks_env("cpuhooks", YILIAN_BENCH_CPU_LOG=str(
            cpu_log)), procs) as base:
        flow = await prepare(base)
        done = 0
        async with aiohttp.ClientSession() as http:
            for _ in range(max(5, args.flows // 10)):
                await flow.once(http, "village")
            procs[0].send_signal(signal.SIGUSR1)
            await asyncio.sleep(0.2)
            for i in range(args.flows):
                done += await flow.once(http, ("village", "township")[i % 2])
            procs[0].send_signal(signal.SIGUSR2)
            for _ in range(50):
                await asyncio.sleep(0.1)
                if cpu_log.exists() and cpu_log.stat().st_size:
                    break
    sums = json.loads(cpu_log.read_text())
    db = "PostgreSQL" if args.database_url else "SQLite"
    print(f"Server CPU per booking flow by layer, one client, {done} flows, {db} (nested "
          f"layers indented; each includes what runs inside it):")
    print(f"{'the whole process':<52} {1000 * sums['process'] / done:7.3f} ms")
    for label, (seconds, calls) in sorted(sums["layers"].items(), key=lambda kv: -kv[1][0]):
        print(f"{label:<52} {1000 * seconds / done:7.3f} ms  {calls / done:5.2f} calls"
              f"  {1e6 * seconds / max(calls, 1):7.1f} µs each")
    return 0


class Run(NamedTuple):
    """The timed flows against one ``yilian demo``, and how long they took."""

    loop: str
    flow: Flow
    seconds: float
    recorded: dict[str, Any] | None  # one real flow's responses, for the bare baseline


async def run_yilian(args: argparse.Namespace, loop: str, record: bool) -> Run:
    """Time the flows against a fresh ``yilian demo`` on the event loop ``loop`` (first
    recording one real flow's responses, with ``record``)."""
    data_dir = Path(tempfile.mkdtemp(prefix="yilian-bench-"))
    async with demo_server(args, data_dir, {"YILIAN_EVENT_LOOP": loop}) as base:
        flow = await prepare(base)
        recorded = await record_responses(flow) if record else None
        await drive(flow, args.clients, max(2, args.flows // 10))  # warm-up
        flow.latency.clear()
        flow.conflicts = flow.errors = 0
        return Run(loop, flow, await drive(flow, args.clients, args.flows), recorded)


async def main(args: argparse.Namespace) -> int:
    if args.statements:
        return await statements(args)
    if args.profile:
        return await profile(args)
    loops = ["uvloop", "asyncio"] if args.event_loop == "both" else [args.event_loop]
    runs = [await run_yilian(args, loop, record=i == 0) for i, loop in enumerate(loops)]
    flow = runs[0].flow
    rec_path = Path(tempfile.mkdtemp(prefix="yilian-bench-")) / "recorded.json"
    rec_path.write_text(json.dumps(runs[0].recorded))
    bare, bare_base = start([sys.executable, str(ROOT / "bench" / "bare_server.py"),
                             str(rec_path)])
    try:
        baseline = Flow(bare_base, flow.tokens, flow.experts, flow.patients)
        await drive(baseline, args.clients, max(2, args.flows // 10))
        baseline.latency.clear()
        bare_s = await drive(baseline, args.clients, args.flows)
    finally:
        stop(bare)

    db = "PostgreSQL" if args.database_url else "SQLite"
    workers = f", {args.workers} server processes" if args.workers > 1 else ""
    print(f"\nBooking flow (experts -> slots -> book -> accept), {args.clients} concurrent "
          f"clients, {args.flows} bookings, database {db}{workers}")
    print(f"{'server':<22} {'flows/s':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    rows = [(run.loop, report(f"Yilian ({run.loop})", run.flow, run.seconds, args.flows))
            for run in runs]
    b = report("bare aiohttp (memory)", baseline, bare_s, args.flows)
    # The booking flow's throughput is the measure (a Yilian flow can take more requests than
    # the bare one's: a two-week window without a free slot, a slot another client took).
    for loop, y in rows:
        print(f"{'ratio ' + loop + '/bare':<22} {y['flows_s'] / b['flows_s']:8.3f} (flows/s; "
              f"requests/s {y['req_s'] / b['req_s']:.3f})   p50 x{y['p50'] / b['p50']:.1f}  "
              f"p99 x{y['p99'] / b['p99']:.1f}")
    return 0 if all(run.flow.errors == 0 for run in runs) else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--flows", type=int, help="bookings to time (default 300; 5 with --statements)")
    p.add_argument("--database-url", default=os.environ.get("YILIAN_BENCH_DATABASE_URL", ""))
    p.add_argument("--workers", type=int, default=1,
                   help="server processes on the one port (yilian serve --workers)")
    p.add_argument("--redis-url", default=os.environ.get("YILIAN_BENCH_REDIS_URL",
                                                         "redis://127.0.0.1:6379/0"),
                   help="the Redis the workers share (with --workers)")
    p.add_argument("--event-loop", choices=["uvloop", "asyncio", "both"], default="both",
                   help="the server's event loop (YILIAN_EVENT_LOOP); both: one run on each, "
                        "uvloop first (the default loop; asyncio's own for comparison)")
    p.add_argument("--quick", action="store_true", help="a few flows, for the smoke test")
    p.add_argument("--statements", action="store_true",
                   help="one client: list each step's SQL statements and time")
    p.add_argument("--profile", action="store_true",
                   help="one client: the server's CPU per flow, by layer (default 200 flows)")
    args = p.parse_args(argv)
    if args.flows is None:
        args.flows = 5 if args.statements else 200 if args.profile else 300
    if args.quick:
        args.clients, args.flows, args.event_loop = 4, 12, "uvloop"
    return args


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
