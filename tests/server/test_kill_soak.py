"""A kill -9 soak: a real `yilian serve` killed with SIGKILL in the middle of mixed work (STOW
uploads, C-STORE from a modality, bookings, audited reads), 20 times. After every restart the
files, the image index, the bookings and the audit log agree, and no acknowledged write is
lost: every stored instance a client was told about is served with the bytes sent, every
booking answered 201 holds its slot, every 200 on patient data has its audit row."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import random
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pydicom
import pytest
from pynetdicom import AE, StoragePresentationContexts
from sqlalchemy import func, select

from tests.dicom.conftest import multipart_body
from yilian.dicom.models import DicomInstance
from yilian.dicom.synth import ct_series
from yilian.server.clinic.models import Consultation, Slot
from yilian.server.core.db import Database
from yilian.server.core.models import AuditEntry

CYCLES = int(os.environ.get("SOAK_CYCLES", "20"))
READY = re.compile(r"Yilian listening on (http://\S+)")
SCP = re.compile(r"DICOM SCP \S+ on port (\d+)")
PASSWORD = "yilian-demo"


@dataclass
class Acknowledged:
    """What the server said it had done."""

    instances: dict[str, str] = field(default_factory=dict)  # SOP UID -> sha256 of the file sent
    # C-STORE sends a dataset, not a file (the SCP writes its own file meta header): SOP UID ->
    # sha256 of the pixel data sent.
    pixels: dict[str, str] = field(default_factory=dict)
    bookings: dict[int, int] = field(default_factory=dict)  # consultation id -> slot id
    reads: int = 0  # 200s of GET /api/consultations/{id} by the expert
    verified: set[str] = field(default_factory=set)  # instances whose bytes were checked


def _start(settings: Any) -> tuple[subprocess.Popen[str], str, int]:
    args = [sys.executable, "-m", "yilian.server.cli", "--log-level", "WARNING", "serve",
            "--host", "127.0.0.1", "--port", "0", "--dicom-port", "0",
            "--data-dir", str(settings.data_dir)]
    if settings.database_url:
        args += ["--database-url", settings.database_url]
    env = os.environ | {"YILIAN_SECRET_KEY": settings.secret_key, "YILIAN_DICOM_WORKERS": "2",
                        "YILIAN_LOGIN_ATTEMPTS_PER_MINUTE": "100000"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    assert proc.stdout is not None
    url, port, seen = "", 0, []
    for line in proc.stdout:
        seen.append(line)
        if m := READY.search(line):
            url = m.group(1)
        if m := SCP.search(line):
            port = int(m.group(1))
        if url and port:
            break
    assert url and port, "".join(seen)
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, url, port


async def _login(http: aiohttp.ClientSession, url: str, user: str) -> dict[str, str]:
    async with http.post(f"{url}/api/auth/login",
                         json={"username": user, "password": PASSWORD}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return {"Authorization": f"Bearer {body['token']}"}


def _cstore(port: int, files: list[bytes]) -> list[str]:
    """Send files as the demo's township DR; the SOP UIDs the SCP answered Success for."""
    ae = AE(ae_title="SHALANG_DR")
    ae.requested_contexts = StoragePresentationContexts[:120]
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    done: list[str] = []
    assoc = ae.associate("127.0.0.1", port, ae_title="YILIAN")
    if not assoc.is_established:
        return done
    try:
        for data in files:
            ds = pydicom.dcmread(io.BytesIO(data))
            try:
                status = assoc.send_c_store(ds)
            except RuntimeError:  # the association died with the server: nothing acknowledged
                break
            if status and status.Status == 0x0000:
                done.append(str(ds.SOPInstanceUID))
    finally:
        if assoc.is_established:
            assoc.release()
    return done


async def _work(url: str, port: int, acked: Acknowledged, rnd: random.Random,
                stop: asyncio.Event) -> None:
    """Mixed load until ``stop``; every success is recorded as it is acknowledged."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        try:
            township = await _login(http, url, "township")
            village = await _login(http, url, "village")
            expert = await _login(http, url, "expert")
            async with http.get(f"{url}/api/consultations", headers=expert) as resp:
                case_id = (await resp.json())[0]["id"]
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            # Killed before the logins were done (a loaded machine): nothing was acknowledged
            # in this cycle, which is what the check after the restart then finds.
            return

        async def stow_loop() -> None:
            while not stop.is_set():
                files = ct_series(2, 32, seed=rnd.randrange(1 << 30))
                body, ctype = multipart_body(files)
                async with http.post(f"{url}/dicomweb/studies", data=body,
                                     headers=township | {"Content-Type": ctype,
                                                         "Accept": "application/dicom+json"}
                                     ) as resp:
                    if resp.status == 200:
                        for f in files:
                            ds = pydicom.dcmread(io.BytesIO(f), stop_before_pixels=True)
                            acked.instances[str(ds.SOPInstanceUID)] = \
                                hashlib.sha256(f).hexdigest()

        async def cstore_loop() -> None:
            while not stop.is_set():
                files = ct_series(2, 32, seed=rnd.randrange(1 << 30))
                sent = {}
                for f in files:
                    ds = pydicom.dcmread(io.BytesIO(f))
                    sent[str(ds.SOPInstanceUID)] = hashlib.sha256(ds.PixelData).hexdigest()
                for uid in await asyncio.to_thread(_cstore, port, files):
                    acked.pixels[uid] = sent[uid]

        async def booking_loop() -> None:
            while not stop.is_set():
                async with http.post(f"{url}/api/patients", headers=village,
                                     json={"name": "Soak Patient", "sex": "female"}) as resp:
                    if resp.status != 201:
                        continue
                    patient = (await resp.json())["id"]
                async with http.get(f"{url}/api/experts", headers=village) as resp:
                    offers = [(e["id"], s["id"]) for e in await resp.json()
                              for s in e["next_free_slots"]]
                if not offers:
                    await asyncio.sleep(0.1)
                    continue
                expert_id, slot = rnd.choice(offers)
                async with http.post(f"{url}/api/consultations", headers=village, json={
                        "patient_id": patient, "kind": "video", "question": "soak",
                        "expert_id": expert_id, "slot_id": slot}) as resp:
                    if resp.status == 201:
                        acked.bookings[(await resp.json())["id"]] = slot

        async def read_loop() -> None:
            while not stop.is_set():
                async with http.get(f"{url}/api/consultations/{case_id}",
                                    headers=expert) as resp:
                    await resp.read()
                    if resp.status == 200:
                        acked.reads += 1

        loops = [stow_loop(), cstore_loop(), booking_loop(), read_loop()]
        results = await asyncio.gather(*loops, return_exceptions=True)
        for r in results:  # the kill ends requests mid-flight: that is the point
            if isinstance(r, BaseException) and not isinstance(
                    r, aiohttp.ClientError | asyncio.TimeoutError | ConnectionError):
                raise r


async def _check(settings: Any, acked: Acknowledged, expert_case_reads: int) -> None:
    db = Database(settings.resolved_database_url)
    try:
        async with db.read() as session:
            rows = {sop: (path, sha) for sop, path, sha in await session.execute(
                select(DicomInstance.sop_uid, DicomInstance.path, DicomInstance.sha256))}
            lost = [uid for uid in [*acked.instances, *acked.pixels] if uid not in rows]
            assert not lost, f"{len(lost)} acknowledged instances lost"
            root = settings.data_dir / "dicom"
            for uid, sha in list(acked.instances.items()):
                if uid in acked.verified:  # bytes checked after an earlier kill: the row
                    assert rows[uid][1] == sha, uid  # and its hash must not have changed
                    continue
                acked.verified.add(uid)
                path, stored_sha = rows[uid]
                assert stored_sha == sha, uid
                assert hashlib.sha256((root / path).read_bytes()).hexdigest() == sha, uid
            for uid, sha in list(acked.pixels.items()):
                if uid in acked.verified:
                    continue
                acked.verified.add(uid)
                path, stored_sha = rows[uid]
                data = (root / path).read_bytes()
                assert hashlib.sha256(data).hexdigest() == stored_sha, uid
                pixels = pydicom.dcmread(io.BytesIO(data)).PixelData
                assert hashlib.sha256(pixels).hexdigest() == sha, uid
            missing_files = [p for p, _ in rows.values() if not (root / p).is_file()]
            assert not missing_files, missing_files[:5]
            for cid, slot_id in acked.bookings.items():
                c = await session.get(Consultation, cid)
                assert c is not None and c.slot_id == slot_id, cid
                slot = await session.get(Slot, slot_id)
                assert slot is not None and slot.status == "booked" and \
                    slot.consultation_id == cid, (cid, slot_id)
            double = (await session.execute(
                select(Consultation.slot_id, func.count()).where(
                    Consultation.slot_id.is_not(None),
                    Consultation.status.in_(("requested", "accepted", "in_progress")))
                .group_by(Consultation.slot_id).having(func.count() > 1))).all()
            assert not double, double
            audited = await session.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == "read", AuditEntry.resource_type == "consultation"))
            assert (audited or 0) >= expert_case_reads, (audited, expert_case_reads)
    finally:
        await db.close()


@pytest.mark.slow
async def test_kill_9_during_mixed_work_loses_nothing_acknowledged(settings) -> None:
    rnd = random.Random(20261130)
    acked = Acknowledged()
    db = Database(settings.resolved_database_url)
    async with db.read() as session:
        reads_before = await session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "read", AuditEntry.resource_type == "consultation")) or 0
    await db.close()
    for cycle in range(CYCLES):
        proc, url, port = await asyncio.to_thread(_start, settings)
        try:
            if cycle:  # the previous cycle's kill: everything acknowledged must be here
                await _check(settings, acked, reads_before + acked.reads)
            stop = asyncio.Event()
            work = asyncio.create_task(_work(url, port, acked, rnd, stop))
            await asyncio.sleep(rnd.uniform(1.5, 3.0))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        stop.set()
        await asyncio.wait_for(work, 60)
    proc, url, port = await asyncio.to_thread(_start, settings)  # the last restart
    try:
        await _check(settings, acked, reads_before + acked.reads)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    counts = (len(acked.instances), len(acked.pixels), len(acked.bookings), acked.reads)
    print(f"soak: {CYCLES} kills; acknowledged and found after restart: {counts[0]} STOW "
          f"instances, {counts[1]} C-STORE instances, {counts[2]} bookings, {counts[3]} "
          "audited reads")
    assert counts[0] > 20 and counts[1] > 10 and counts[2] > 5 and counts[3] > 20, counts
