"""A real full disk: the data directory on a 16 MiB tmpfs, filled to the last byte. STOW
answers 507 and stores nothing half-way, login never answers 500, /healthz says "degraded";
once space is freed everything works again."""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from tests.conftest import Api, with_settings
from tests.dicom.conftest import stored, stow
from yilian.dicom.models import DicomInstance
from yilian.dicom.synth import ct_series
from yilian.server.app import create_app
from yilian.server.core import keys
from yilian.server.core.settings import Settings


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted for the test (root may mount; skipped where it may not)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs",
                           str(mount)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system has no byte left; returns it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    assert os.statvfs(directory).f_bavail == 0
    return filler


async def _instances(server: TestServer) -> int:
    async with server.app[keys.DATABASE].read() as session:
        return await session.scalar(select(func.count()).select_from(DicomInstance)) or 0


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


async def test_a_full_disk_answers_507_and_recovers(settings: Settings,
                                                    small_disk: Path) -> None:
    data = small_disk / "data"
    shutil.copytree(settings.data_dir, data)
    server = TestServer(create_app(with_settings(settings, data_dir=data)), host="127.0.0.1",
                        port=0)
    await server.start_server()
    try:
        async with ClientSession() as http:
            api = Api(server, http)
            township = await api.login("township")
            first = ct_series(2, 64, patient={"id": "DISK-1"})
            assert (await stow(township, first))[0] == 200
            assert await api.get("/healthz") == (200, {"status": "ok"})

            # The journal's current file is written out and closed, so the next audit line
            # needs a new file, hence new blocks.
            await server.app[keys.AUDIT].flush()
            filler = fill(small_disk)
            status, health = await api.get("/healthz")
            assert status == 503 and health["status"] == "degraded", health
            assert health["checks"]["disk"]["ok"] is False
            assert health["checks"]["disk"]["free_bytes"] == 0
            assert health["checks"]["database"] == {"ok": True}

            instances, files = await _instances(server), _files(data / "dicom")
            second = ct_series(3, 64, patient={"id": "DISK-2"})
            status, body = await stow(township, second)
            assert (status, body["error"]["code"]) == (507, "insufficient_storage"), body
            assert await _instances(server) == instances  # nothing indexed
            assert _files(data / "dicom") == files  # nothing left on disk, staged or placed

            # A login writes a token row and an audit line (logins are audited), and the
            # audit line is journaled on the data disk first: on either database the full
            # disk refuses it (507, nothing stored). Never a 500.
            status, body = await api.post("/api/auth/login",
                                          {"username": "village", "password": "yilian-demo"})
            assert (status, body["error"]["code"]) == (507, "insufficient_storage"), body
            # Reading patients needs an audit line, journaled on the full disk first.
            status, body = await township.get("/api/patients")
            assert (status, body["error"]["code"]) == (507, "insufficient_storage"), body

            filler.unlink()
            assert await api.get("/healthz") == (200, {"status": "ok"})
            status, doc = await stow(township, second)
            assert status == 200 and len(stored(doc)) == 3, doc
            assert await _instances(server) == instances + 3
            study = pydicom.dcmread(io.BytesIO(second[0])).StudyInstanceUID
            assert len(list((data / "dicom" / study).rglob("*.dcm"))) == 3
            assert (await api.login("village")).token
    finally:
        await server.close()
