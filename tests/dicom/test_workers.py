"""Parsing in worker processes: a dead worker costs no upload and leaves the server up, the
thread mode stores the same, refusals keep their reason across processes, and staged files
abandoned by a crash are swept."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import time
from pathlib import Path

from aiohttp.test_utils import TestServer

from tests.conftest import Api, with_settings
from tests.dicom.conftest import dget, failed, multipart_body, stored, stow
from yilian.dicom import keys as dicom_keys
from yilian.dicom.parse import DATASET_MISMATCH, InstanceRejected
from yilian.dicom.workers import parse_staged, sweep_staging
from yilian.server.app import create_app
from yilian.server.core.settings import Settings


def test_a_refusal_keeps_its_reason_across_processes() -> None:
    exc = InstanceRejected("no", DATASET_MISMATCH, "1.2", "1.2.3")
    back = pickle.loads(pickle.dumps(exc))
    assert (back.message, back.reason, back.sop_class_uid, back.sop_instance_uid) == (
        "no", DATASET_MISMATCH, "1.2", "1.2.3")


def test_parse_staged_reads_flushes_and_carries_no_bytes(tmp_path: Path,
                                                        ct_files: list[bytes]) -> None:
    path = tmp_path / "a.tmp"
    path.write_bytes(ct_files[0])
    p = parse_staged(str(path))
    assert p.data is None and p.size == len(ct_files[0]) and p.rows == 128
    other = p.study_uid + ".9"
    try:
        parse_staged(str(path), other)
    except InstanceRejected as exc:
        assert exc.reason == DATASET_MISMATCH and exc.sop_instance_uid == p.sop_uid
    else:
        raise AssertionError("a study mismatch was accepted")


async def test_killed_workers_cost_no_upload(api: Api, ct_files: list[bytes]) -> None:
    storage = api.server.app[dicom_keys.DICOM_STORAGE]
    township = await api.login("township")
    status, doc = await stow(township, ct_files[:2])
    assert status == 200 and len(stored(doc)) == 2
    pids = storage.parsers.pids()
    assert pids and os.getpid() not in pids
    for pid in pids:  # as if the kernel killed them (out of memory, a decoder crash)
        os.kill(pid, signal.SIGKILL)
    await _until_gone(pids, 10)
    status, doc = await stow(township, ct_files[2:])
    assert status == 200, doc
    assert len(stored(doc)) == 2 and failed(doc) == []
    assert set(storage.parsers.pids()).isdisjoint(pids)
    status, found = await dget(township, "/dicomweb/studies/"
                               f"{_study(ct_files[0])}/instances")
    assert status == 200 and len(found) == 4
    assert list(storage.staging.iterdir()) == []


async def test_thread_mode_stores_the_same(settings: Settings, ct_files: list[bytes]) -> None:
    srv = TestServer(create_app(with_settings(settings, dicom_workers=0)), host="127.0.0.1",
                     port=0)
    await srv.start_server()
    try:
        from aiohttp import ClientSession
        async with ClientSession() as http:
            township = await Api(srv, http).login("township")
            status, doc = await stow(township, ct_files[:3] + [b"not dicom"])
            assert status == 202
            assert len(stored(doc)) == 3 and len(failed(doc)) == 1
            assert srv.app[dicom_keys.DICOM_STORAGE].parsers.pids() == []
    finally:
        await srv.close()


def test_abandoned_staged_files_are_swept(tmp_path: Path) -> None:
    old, new, other = tmp_path / "old.tmp", tmp_path / "new.tmp", tmp_path / "keep.dcm"
    for f in (old, new, other):
        f.write_bytes(b"x")
    past = time.time() - 2 * 24 * 3600
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    assert sweep_staging(tmp_path) == 1
    assert sorted(f.name for f in tmp_path.iterdir()) == ["keep.dcm", "new.tmp"]


async def _until_gone(pids: list[int], seconds: float) -> None:
    for _ in range(int(seconds * 20)):
        if not any(_alive(p) for p in pids):
            return
        await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a killed child of another process stays a zombie until reaped: not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _study(data: bytes) -> str:
    import io

    import pydicom
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).StudyInstanceUID)


async def test_workers_exit_with_a_killed_server(tmp_path: Path, ct_files: list[bytes]) -> None:
    """A server killed outright (SIGKILL, the OOM killer) leaves no parsing worker behind."""
    from aiohttp import ClientSession

    from bench.dicomweb_bench import login, start_yilian

    proc, url, _ = await asyncio.to_thread(start_yilian, tmp_path)
    try:
        token = await login(url)
        body, ctype = multipart_body(ct_files[:1])
        async with ClientSession() as http, http.post(
                f"{url}/dicomweb/studies", data=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": ctype}) as r:
            assert r.status == 200
        family = _descendants(proc.pid)
        assert len(family) >= 4  # the forkserver and the workers
    finally:
        proc.kill()
        proc.wait(30)
    await _until_gone(family, 15)
    assert [p for p in family if _alive(p)] == []


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out
