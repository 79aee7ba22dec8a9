"""What one request may cost, tested as an attacker sends it, against a real `yilian serve`
process whose memory and CPU are read from /proc: a frame list repeating one frame, large
frame and study retrieves nobody reads, uploads declaring 530 MB that send 5 bytes, 100,000
empty multipart parts, headers dribbled a byte at a time. /healthz keeps answering
throughout (median of a few probes under 200 ms)."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
import pytest
from pydicom.uid import generate_uid

from tests.server.live import wait_ready
from yilian.dicom.multipart import build_multipart, new_boundary
from yilian.dicom.synth import CT_IMAGE, _base, to_bytes
from yilian.server.core.settings import Settings

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 3.0
MARGIN = 4.0  # how late after its deadline a connection may still be closed on a busy machine
FRAMES, SIDE = 32, 1024  # a 64 MB multi-frame instance of 2 MB frames


@dataclass
class Live:
    """A `yilian serve` subprocess and what the tests observe of it."""

    url: str
    port: int
    pid: int
    log: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def cpu_seconds(self) -> float:
        """CPU time of the server and its children (the DICOM parsing workers)."""
        family, total = {self.pid}, 0.0
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        grew = True
        while grew:
            more = {p for p, (ppid, _) in stats.items() if ppid in family} - family
            family |= more
            grew = bool(more)
        total = sum(stats[p][1] for p in family if p in stats)
        return total / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    """The server as a subprocess, with short timeouts and no frame cache (so what it holds
    is what a request costs)."""
    env = os.environ | {
        "YILIAN_SECRET_KEY": settings.secret_key,
        "YILIAN_LOGIN_ATTEMPTS_PER_MINUTE": "100000",
        "YILIAN_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "YILIAN_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        "YILIAN_DICOM_TILE_CACHE_MB": "0",
        "YILIAN_DICOM_WORKERS": "2",
    }
    args = [sys.executable, "-m", "yilian.server.cli", "--log-level", "WARNING", "serve",
            "--host", "127.0.0.1", "--port", "0", "--data-dir", str(settings.data_dir),
            "--dicom-port", "off"]
    if settings.database_url:
        args += ["--database-url", settings.database_url]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    assert proc.stdout is not None
    try:
        url = wait_ready(proc.stdout, proc)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    server = Live(url, int(url.rsplit(":", 1)[1]), proc.pid)
    # keep reading its output, so a full pipe never blocks it
    drain = threading.Thread(target=lambda: server.log.extend(proc.stdout or ()), daemon=True)
    drain.start()
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        drain.join(5)
        print(f"\n{os.environ.get('PYTEST_CURRENT_TEST', '')}: {server.figures}")
    # no request of the attacks was a 500 (each is logged with its traceback)
    assert not [line for line in server.log if "Traceback" in line], "".join(server.log)


async def _token(live: Live) -> str:
    async with aiohttp.ClientSession() as http, http.post(
            f"{live.url}/api/auth/login",
            json={"username": "township", "password": "yilian-demo"}) as r:
        assert r.status == 200
        return str((await r.json())["token"])


async def _healthz_median(live: Live, probes: int = 5) -> float:
    """Median seconds of a few /healthz requests, each on a new connection."""
    times = []
    for _ in range(probes):
        t0 = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 10)
        times.append(time.perf_counter() - t0)
        writer.close()
        assert data.startswith(b"HTTP/1.1 200"), data[:100]
        await asyncio.sleep(0.05)
    return statistics.median(times)


class _Peak:
    """The largest resident size of the server while a block runs (sampled every 20 ms)."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.base = live.rss_mb()
        self.peak = self.base
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.live.rss_mb())
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> _Peak:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, self.live.rss_mb())

    @property
    def growth(self) -> float:
        return self.peak - self.base


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, and what it sent before.

    A reset counts as closed: a byte the client writes after the server's close (the dribbling
    test writes every half second and cannot know) makes the kernel answer with RST, and the
    read that would have seen EOF sees the reset instead.
    """
    t0 = time.perf_counter()
    got = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), limit):
            got = (got + chunk)[:4096]
    except ConnectionResetError:
        pass
    return time.perf_counter() - t0, got


def _multiframe() -> bytes:
    ds = _base(CT_IMAGE, generate_uid(), generate_uid(), {"id": "LIMITS-1"}, "CT")
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = SIDE
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.NumberOfFrames = FRAMES
    ds.PixelData = np.random.default_rng(7).integers(
        0, 4096, (FRAMES, SIDE, SIDE), dtype="<u2").tobytes()
    return to_bytes(ds)


async def _while(attack: Awaitable[Any], live: Live) -> tuple[Any, float]:
    """Run ``attack`` and probe /healthz while it runs; (its result, median probe seconds)."""
    task = asyncio.ensure_future(attack)
    await asyncio.sleep(0.3)
    median = await _healthz_median(live)
    return await task, median


async def test_frame_lists_and_big_retrieves_cost_one_frame(live: Live) -> None:
    token = await _token(live)
    data = _multiframe()
    boundary = new_boundary()
    async with _Peak(live) as peak, aiohttp.ClientSession() as http, http.post(
            f"{live.url}/dicomweb/studies",
            data=build_multipart([(data, {"Content-Type": "application/dicom"})], boundary),
            headers={"Authorization": f"Bearer {token}", "Content-Type":
                     f'multipart/related; type="application/dicom"; boundary={boundary}'},
            timeout=aiohttp.ClientTimeout(total=120)) as r:
        assert r.status == 200, await r.text()
        url = (await r.json())["00081199"]["Value"][0]["00081190"]["Value"][0]
    # the 64 MB part went to disk in pieces (its parsing worker is another process)
    live.figures["upload_64mb_rss_growth_mb"] = round(peak.growth)
    assert peak.growth < 32
    path = url.split(live.url, 1)[1]
    study = path.split("/series/")[0]
    octets = 'multipart/related; type="application/octet-stream"'

    # 400 times frame 1 in an 800-byte URL, then 200 times (under the limit of 256)
    for repeats, code in ((400, "too_many_frames"), (200, "invalid_frame_list")):
        async with _Peak(live) as peak, aiohttp.ClientSession() as http:
            t0 = time.perf_counter()
            async with http.get(f"{live.url}{path}/frames/{','.join(['1'] * repeats)}",
                                headers={"Authorization": f"Bearer {token}", "Accept": octets},
                                timeout=aiohttp.ClientTimeout(total=120)) as r:
                body = await r.json()
                status = r.status
            took = time.perf_counter() - t0
        live.figures |= {f"frame_1_x{repeats}_status": status,
                         f"frame_1_x{repeats}_rss_growth_mb": round(peak.growth),
                         f"frame_1_x{repeats}_s": round(took, 2)}
        assert (status, body["error"]["code"]) == (400, code)
        assert peak.growth < 32

    # four clients ask for every frame (64 MB each), then for the whole study, and read
    # nothing for a while: the server holds about one frame (one read) per response
    for what, target, accept in (("frames", f"{path}/frames/"
                                  + ",".join(str(n) for n in range(1, FRAMES + 1)), octets),
                                 ("study", study, 'multipart/related; type="application/dicom"')):
        conns = []
        async with _Peak(live) as peak:
            for _ in range(4):
                reader, writer = await asyncio.open_connection("127.0.0.1", live.port,
                                                               limit=1 << 16)
                writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                             f"{token}\r\nAccept: {accept}\r\n\r\n".encode())
                conns.append((reader, writer))
            statuses = [(await _read_head(r))[0] for r, _ in conns]
            await asyncio.sleep(1.5)  # the answers are written as far as the server will go
            median = await _healthz_median(live)
        live.figures |= {f"{what}_x4_unread_rss_growth_mb": round(peak.growth),
                         f"{what}_healthz_median_ms": round(median * 1000)}
        assert statuses == [200] * 4
        assert median < 0.2
        assert peak.growth < 64, peak.growth
        for reader, writer in conns:  # now read them: every frame / the whole file arrives
            rest = await asyncio.wait_for(_read_all(reader), 60)
            assert len(rest) > FRAMES * SIDE * SIDE * 2
            writer.close()


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    """The rest of a chunked response, up to its last chunk (the connection stays open)."""
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


async def test_uploads_declaring_530_mb_and_sending_5_bytes(live: Live) -> None:
    token = await _token(live)
    conns = []
    async with _Peak(live) as peak:
        for _ in range(4):
            reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
            writer.write(b"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\n"
                         b"Authorization: Bearer " + token.encode() + b"\r\n"
                         b'Content-Type: multipart/related; type="application/dicom"; '
                         b"boundary=abc\r\nContent-Length: 530000000\r\n\r\n--abc")
            conns.append((reader, writer))
        sent = time.perf_counter()
        await asyncio.sleep(0.5)
        median = await _healthz_median(live)
        closed = await asyncio.gather(*(_closed_after(r, BODY_TIMEOUT + MARGIN + 5)
                                        for r, _ in conns), return_exceptions=True)
        held = time.perf_counter() - sent
    live.figures |= {"stalled_uploads_rss_growth_mb": round(peak.growth),
                     "stalled_uploads_healthz_median_ms": round(median * 1000),
                     "stalled_uploads_closed_after_s": round(held, 1)}
    assert median < 0.2
    assert peak.growth < 32, peak.growth
    assert not [c for c in closed if isinstance(c, BaseException)], closed
    assert held < BODY_TIMEOUT + MARGIN
    for _, answer in closed:  # type: ignore[misc]
        assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer, answer
    for _, writer in conns:
        writer.close()


async def test_headers_dribbled_a_byte_at_a_time_are_cut_off(live: Live) -> None:
    conns = []
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        conns.append((reader, writer))
    opened = time.perf_counter()

    async def dribble() -> None:
        for _ in range(int((HEADER_TIMEOUT + MARGIN) * 2) + 4):
            for _, writer in conns:
                if not writer.is_closing():
                    writer.write(b"a")
            await asyncio.sleep(0.5)

    task = asyncio.ensure_future(dribble())
    await asyncio.sleep(0.3)
    median = await _healthz_median(live)
    closed = await asyncio.gather(*(_closed_after(r, HEADER_TIMEOUT + MARGIN + 5)
                                    for r, _ in conns), return_exceptions=True)
    held = time.perf_counter() - opened
    task.cancel()
    live.figures |= {"slowloris_healthz_median_ms": round(median * 1000),
                     "slowloris_closed_after_s": round(held, 1)}
    assert median < 0.2
    assert not [c for c in closed if isinstance(c, BaseException)], closed
    assert held < HEADER_TIMEOUT + MARGIN
    assert [answer for _, answer in closed] == [b""] * len(conns)  # type: ignore[misc]
    for _, writer in conns:
        writer.close()


async def test_a_hundred_thousand_empty_parts(live: Live) -> None:
    token = await _token(live)
    body = build_multipart([(b"", {})] * 100_000, "b")
    cpu = live.cpu_seconds()

    async def post() -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as http, http.post(
                f"{live.url}/dicomweb/studies", data=body, headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
                timeout=aiohttp.ClientTimeout(total=300)) as r:
            return r.status, await r.read()

    async with _Peak(live) as peak:
        t0 = time.perf_counter()
        (status, answer), median = await _while(post(), live)
        took = time.perf_counter() - t0
        await asyncio.sleep(0.5)  # what the workers still do once the answer is sent
    used = live.cpu_seconds() - cpu
    live.figures |= {"empty_parts_status": status, "empty_parts_s": round(took, 2),
                     "empty_parts_cpu_s": round(used, 2),
                     "empty_parts_rss_growth_mb": round(peak.growth),
                     "empty_parts_healthz_median_ms": round(median * 1000)}
    assert status == 413 and b"too_many_parts" in answer, answer[:300]
    assert used < 10
    assert peak.growth < 64
    assert median < 0.2
