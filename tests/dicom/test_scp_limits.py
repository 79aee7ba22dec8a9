"""The SCP under a connection-exhaustion attack, as the attacker does it: raw TCP sockets that
send nothing or half an A-ASSOCIATE-RQ, from the modality's own address and from others
(loopback has them all: 127.0.0.2 is another host to the server). The real modality still
stores, /healthz stays fast, and the server closes the idle sockets within ``acse_timeout``.
Associated peers are capped per address and aborted when idle for ``network_timeout``."""

from __future__ import annotations

import asyncio
import io
import json
import select
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pydicom
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import select as sql_select

from tests.conftest import with_settings
from tests.dicom.test_scp import _run, needs_dcmtk
from yilian.dicom import keys as dicom_keys
from yilian.dicom.modalities import manage_modalities
from yilian.dicom.models import DicomModality
from yilian.dicom.synth import ct_series
from yilian.server.app import create_app
from yilian.server.core import keys
from yilian.server.core.settings import Settings

ACSE_TIMEOUT = 2.0
NETWORK_TIMEOUT = 2.0
# An A-ASSOCIATE-RQ header announcing 4000 bytes, and the first 60 of them.
PARTIAL_PDU = b"\x01\x00" + struct.pack(">L", 4000) + b"\x00\x01" + b"\x00" * 58


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[TestServer]:
    """The app with its SCP: 8 connections, 3 per address, 2 s to associate, 2 s idle."""
    srv = TestServer(create_app(with_settings(
        settings, dicom_port=0, dicom_max_associations=8, dicom_max_associations_per_address=3,
        dicom_acse_timeout=ACSE_TIMEOUT, dicom_network_timeout=NETWORK_TIMEOUT)),
        host="127.0.0.1", port=0)
    await srv.start_server()
    yield srv
    await srv.close()


def _connect(port: int, source: str, partial: bool) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    if partial:
        s.sendall(PARTIAL_PDU)
    return s


def _closed_after(socks: list[tuple[socket.socket, float]], limit: float) -> list[float]:
    """Seconds from each socket's connect until the server closed it (inf if it did not
    within ``limit`` seconds from now)."""
    when = {s: float("inf") for s, _ in socks}
    start = dict(socks)
    deadline = time.monotonic() + limit
    open_ = [s for s, _ in socks]
    while open_ and time.monotonic() < deadline:
        ready, _, _ = select.select(open_, [], [], 0.05)
        for s in ready:
            try:
                data = s.recv(4096)
            except OSError:  # reset
                data = b""
            if not data:
                when[s] = time.monotonic() - start[s]
                open_.remove(s)
    for s, _ in socks:
        s.close()
    return [when[s] for s, _ in socks]


# The attacker, as a process of its own (only the standard library, so it starts at once):
# keeps COUNT idle or half-sent connections open from SOURCES for SECONDS, opening a new one
# whenever the server closes one; prints "ready" once they are first open, then a report.
ATTACKER = """
import json, select, socket, struct, sys, time
port, count, seconds, sources = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
partial = b"\\x01\\x00" + struct.pack(">L", 4000) + b"\\x00\\x01" + b"\\x00" * 58
socks, opened, refused, end = [], 0, 0, None
while end is None or time.monotonic() < end:
    while len(socks) < count:
        try:
            s = socket.socket()
            s.bind((sources[opened % len(sources)], 0))
            s.connect(("127.0.0.1", port))
            if opened % 2:
                s.sendall(partial)
            socks.append(s)
        except OSError:
            refused += 1
        opened += 1
    if end is None:
        print("ready", flush=True)
        end = time.monotonic() + seconds
    ready, _, _ = select.select(socks, [], [], 0.05)
    for s in ready:
        try:
            gone = not s.recv(4096)
        except OSError:
            gone = True
        if gone:
            socks.remove(s)
            s.close()
    time.sleep(0.01)
print(json.dumps({"opened": opened, "refused": refused, "open_at_end": len(socks)}))
"""


def _store(port: int, files: list[bytes], source: str = "127.0.0.1") -> list[int]:
    datasets = [pydicom.dcmread(io.BytesIO(f)) for f in files]
    ae = AE(ae_title="SHALANG_DR")
    ae.add_requested_context(datasets[0].SOPClassUID, datasets[0].file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="YILIAN", bind_address=(source, 0))
    assert assoc.is_established, "the modality could not associate"
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


async def _healthz_ms(srv: TestServer, probes: int = 7) -> float:
    times = []
    async with ClientSession() as http:
        for _ in range(probes):
            t0 = time.perf_counter()
            async with http.get(srv.make_url("/healthz")) as r:
                assert r.status == 200
            times.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.05)
    return statistics.median(times)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def _gate_threads() -> int:
    return sum(1 for t in threading.enumerate() if "process_request_thread" in t.name)


async def _narrow_demo_dr(srv: TestServer) -> None:
    """SHALANG_DR may call from 127.0.0.1 only: 127.0.0.2-4 are strangers."""
    db = srv.app[keys.DATABASE]
    async with db.read() as session:
        institution = await session.scalar(sql_select(DicomModality.institution_id).where(
            DicomModality.ae_title == "SHALANG_DR"))
    await manage_modalities(db, "add", "SHALANG_DR", institution, "", ["127.0.0.1"])
    await srv.app[dicom_keys.DICOM_SCP].refresh()  # as the next association would


async def test_idle_sockets_do_not_shut_the_modality_out(limited: TestServer) -> None:
    port = limited.app[dicom_keys.DICOM_PORT]
    assert port
    await _narrow_demo_dr(limited)
    files = ct_series(3, 32, patient={"name": "Under^Attack", "id": "DOS-1"})

    # 16 sockets (the limit is 8, 3 per address): 6 from the modality's own address, 10 from
    # two strangers; every other one sends half an A-ASSOCIATE-RQ, the rest nothing.
    sources = ["127.0.0.1"] * 6 + ["127.0.0.2"] * 5 + ["127.0.0.3"] * 5
    socks = [(_connect(port, src, n % 2 == 1), time.monotonic())
             for n, src in enumerate(sources)]
    statuses = await asyncio.to_thread(_store, port, files[:1])
    assert statuses == [0x0000]
    closed = await asyncio.to_thread(_closed_after, socks, ACSE_TIMEOUT + 5)
    # every one closed by the server within acse_timeout (+ the gate's half-second sweep and
    # a margin for a loaded machine); those a newer connection displaced, at once
    assert max(closed) <= ACSE_TIMEOUT + 2.5, closed
    print("attack sockets closed after (s):",
          [(src, round(c, 2)) for src, c in zip(sources, closed, strict=True)])

    # A sustained attack from other hosts, in a process of its own: the modality stores with
    # dcmtk and pynetdicom meanwhile, and the web server answers.
    rss_before = _rss_mb()
    attacker = subprocess.Popen(  # noqa: ASYNC220 (started once; waited for in a thread)
        [sys.executable, "-c", ATTACKER, str(port), "12", "6", "127.0.0.2", "127.0.0.3",
         "127.0.0.4"], stdout=subprocess.PIPE, text=True)
    try:
        assert attacker.stdout is not None
        assert (await asyncio.to_thread(attacker.stdout.readline)).strip() == "ready"
        await asyncio.sleep(0.5)
        median_ms = await _healthz_ms(limited)
        threads_during = _gate_threads()
        statuses = await asyncio.to_thread(_store, port, files[1:2])
        assert statuses == [0x0000]
        median_ms = max(median_ms, await _healthz_ms(limited))
        rss_during = _rss_mb()
        assert attacker.poll() is None  # all this while the attack went on
        out, _ = await asyncio.to_thread(attacker.communicate, timeout=60)
    finally:
        if attacker.poll() is None:
            attacker.kill()
            attacker.wait()
    report = json.loads(out.strip().splitlines()[-1])
    print(f"sustained attack: {report}; /healthz median {median_ms:.1f} ms; gate threads "
          f"{threads_during}; RSS {rss_before:.0f} -> {rss_during:.0f} MB")
    assert report["opened"] > 12  # the server kept closing them
    assert 0 < threads_during <= 2 * 8  # the gate's bound on connection threads
    assert median_ms < 200, median_ms
    for _ in range(100):  # the attack's connections are all gone
        if _gate_threads() == 0:
            break
        await asyncio.sleep(0.1)
    assert _gate_threads() == 0
    assert await asyncio.to_thread(_store, port, files[2:]) == [0x0000]


@needs_dcmtk
async def test_storescu_during_an_attack(limited: TestServer, tmp_path: Path) -> None:
    port = limited.app[dicom_keys.DICOM_PORT]
    assert port
    await _narrow_demo_dr(limited)
    socks = [(_connect(port, src, n % 2 == 0), time.monotonic())
             for n, src in enumerate(["127.0.0.1"] * 5 + ["127.0.0.2"] * 5)]
    path = tmp_path / "a.dcm"
    path.write_bytes(ct_series(1, 32, patient={"id": "DOS-2"})[0])
    code, out = await _run("storescu", "-aet", "SHALANG_DR", "-aec", "YILIAN", "127.0.0.1",
                           str(port), str(path))
    assert code == 0, out
    closed = await asyncio.to_thread(_closed_after, socks, ACSE_TIMEOUT + 5)
    assert max(closed) <= ACSE_TIMEOUT + 2.5, closed


async def test_associations_are_capped_per_address_and_idle_ones_aborted(
        limited: TestServer) -> None:
    port = limited.app[dicom_keys.DICOM_PORT]
    assert port

    def hold(source: str) -> object:
        ae = AE(ae_title="SHALANG_DR")
        ae.add_requested_context(Verification)
        return ae.associate("127.0.0.1", port, ae_title="YILIAN", bind_address=(source, 0))

    held = [await asyncio.to_thread(hold, "127.0.0.1") for _ in range(3)]
    assert all(a.is_established for a in held)  # type: ignore[attr-defined]
    t0 = time.monotonic()
    fourth = await asyncio.to_thread(hold, "127.0.0.1")  # the address's quota is taken
    assert not fourth.is_established  # type: ignore[attr-defined]
    other = await asyncio.to_thread(hold, "127.0.0.5")  # another host is not held up
    assert other.is_established  # type: ignore[attr-defined]
    other.release()  # type: ignore[attr-defined]
    # silent for network_timeout: the server aborts them, and the address may call again
    for _ in range(100):
        if not any(a.is_established for a in held):  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.1)
    waited = time.monotonic() - t0
    assert all(a.is_aborted for a in held), waited  # type: ignore[attr-defined]
    assert waited <= NETWORK_TIMEOUT + 3, waited
    # The server frees an aborted association's slot when its thread has ended, moments
    # after the caller sees the abort: a modality calling again within a second gets in.
    for _ in range(20):
        again = await asyncio.to_thread(hold, "127.0.0.1")
        if again.is_established:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.1)
    assert again.is_established  # type: ignore[attr-defined]
    again.release()  # type: ignore[attr-defined]
