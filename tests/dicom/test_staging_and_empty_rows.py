"""What a refused or crashed upload leaves: no empty study, series or patient row; and staged
files of a server killed mid-upload are gone at the next start, while those of a server
still running on the same data directory stay."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid
from sqlalchemy import func, select

from tests.conftest import Api
from tests.dicom.conftest import dget, failed, multipart_body, stored, stow
from tests.server.live import wait_ready
from yilian.dicom.models import DicomPatient, DicomSeries, DicomStudy
from yilian.dicom.parse import DATASET_MISMATCH
from yilian.dicom.store import Storage
from yilian.dicom.synth import ct_series
from yilian.dicom.workers import STAGING
from yilian.server.core import keys
from yilian.server.core.db import Database
from yilian.server.core.settings import Settings


def _moved(data: bytes, study: str, patient: str) -> bytes:
    """The instance as if it belonged to another study and patient (its series unchanged)."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.StudyInstanceUID, ds.SOPInstanceUID, ds.PatientID = study, generate_uid(), patient
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


async def _counts(api: Api) -> tuple[int, int, int]:
    async with api.server.app[keys.DATABASE].read() as session:
        return tuple([await session.scalar(select(func.count()).select_from(t))  # type: ignore[misc]
                      for t in (DicomStudy, DicomSeries, DicomPatient)])


async def test_a_refused_upload_leaves_no_empty_study(api: Api, ct_files: list[bytes]) -> None:
    township = await api.login("township")
    status, doc = await stow(township, ct_files[:2])
    assert status == 200, doc
    before = await _counts(api)
    # a new study and patient holding a series already stored in another study: refused
    status, doc = await stow(township, [_moved(ct_files[2], generate_uid(), "EMPTY-1")])
    assert status == 409 and failed(doc)[0]["00081197"]["Value"] == [DATASET_MISMATCH]
    assert await _counts(api) == before
    status, found = await dget(township, "/dicomweb/studies", params={"PatientID": "EMPTY-1"})
    assert status == 200 and found == []
    # one request, two new studies of one new patient: the refused one leaves nothing, the
    # stored one keeps the patient
    study = generate_uid()
    good = ct_series(1, 32, patient={"id": "EMPTY-2"}, study_uid=study)
    status, doc = await stow(township, [_moved(ct_files[3], generate_uid(), "EMPTY-2"), *good])
    assert status == 202 and len(stored(doc)) == 1 and len(failed(doc)) == 1
    assert await _counts(api) == (before[0] + 1, before[1] + 1, before[2] + 1)
    status, found = await dget(township, "/dicomweb/studies", params={"PatientID": "EMPTY-2"})
    assert [s["0020000D"]["Value"][0] for s in found] == [study]


class _Server:
    """``yilian serve`` as its own process (parsing on its threads), uploading slowly."""

    def __init__(self, settings: Settings) -> None:
        args = [sys.executable, "-m", "yilian.server.cli", "--log-level", "WARNING", "serve",
                "--host", "127.0.0.1", "--port", "0", "--data-dir", str(settings.data_dir),
                "--dicom-port", "off"]
        if settings.database_url:
            args += ["--database-url", settings.database_url]
        env = os.environ | {"YILIAN_SECRET_KEY": settings.secret_key,
                            "YILIAN_DICOM_WORKERS": "0"}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        assert self.proc.stdout is not None
        self.url = wait_ready(self.proc.stdout, self.proc)
        self.log: list[str] = []
        threading.Thread(target=self.log.extend, args=(self.proc.stdout,), daemon=True).start()
        self.upload: socket.socket | None = None

    def staged(self, staging: Path) -> list[Path]:
        """The files staged in this process's own folder."""
        return sorted(staging.glob(f"{self.proc.pid}-*/*"))

    def start_upload(self, files: list[bytes]) -> None:
        """POST a STOW body of ``files`` but stop in the middle of the last part: the parts
        before it are staged, waiting for the rest."""
        req = urllib.request.Request(self.url + "/api/auth/login", method="POST", data=json.dumps(
            {"username": "township", "password": "yilian-demo"}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            token = json.load(r)["token"]
        body, ctype = multipart_body(files)
        host, port = self.url.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)))
        sock.sendall((f"POST /dicomweb/studies HTTP/1.1\r\nHost: {host}\r\n"
                      f"Authorization: Bearer {token}\r\nContent-Type: {ctype}\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode()
                     + body[:len(body) - len(files[-1]) // 2])
        self.upload = sock  # held open: the upload is under way

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _until(check: object, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while not check() and time.monotonic() < end:  # type: ignore[operator]
        time.sleep(0.05)
    assert check(), "timed out"  # type: ignore[operator]


def test_a_crashed_upload_is_swept_at_the_next_start(settings: Settings) -> None:
    staging = settings.data_dir / "dicom" / STAGING
    files = ct_series(3, 64, patient={"id": "CRASH-1"})
    crashed, running = _Server(settings), _Server(settings)
    try:
        for server in (crashed, running):
            server.start_upload(files)
        _until(lambda: len(crashed.staged(staging)) == 2 and len(running.staged(staging)) == 2)
        left_behind = crashed.staged(staging)
        crashed.stop(signal.SIGKILL)  # killed mid-upload: nothing cleaned up
        assert all(p.exists() for p in left_behind)

        db = Database(settings.resolved_database_url)
        storage = Storage(settings.data_dir / "dicom", db, workers=0)  # the next start
        try:
            assert not any(p.exists() for p in left_behind)
            assert not list(staging.glob(f"{crashed.proc.pid}-*"))  # its folder and lock
            assert len(running.staged(staging)) == 2  # a live process's upload is untouched
        finally:
            storage.close()
            asyncio.run(db.close())
        assert running.upload is not None
        running.upload.close()  # the client gives up: its staged parts are discarded
        _until(lambda: running.staged(staging) == [])
        running.stop()  # a clean stop removes its own folder and lock
        assert running.proc.returncode == 0, running.log
        assert sorted(p.name for p in staging.iterdir()) == []
    finally:
        for server in (crashed, running):
            if server.proc.poll() is None:
                server.stop(signal.SIGKILL)
