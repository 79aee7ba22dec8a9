"""Parsing received files in worker processes.

Reading a DICOM header is pure Python and holds the interpreter lock: parsed on the server's
own threads, four concurrent uploads take turns on one core while the event loop, the
database driver and the HTTP parser wait for it. Each received file is therefore written to
the staging directory by the server (a copy it has to make anyway) and parsed, hashed and
flushed to disk (``fsync``) by a worker process that reads it back from the page cache; only
the small parse result travels back. A worker that crashes on a hostile file (the image
decoders are native code) takes down neither the server nor, after one retry, other uploads.

``YILIAN_DICOM_WORKERS=0`` parses on the server's threads instead (no extra processes).

The staging directory: each running store has a folder of its own under ``.staging`` and
holds a lock (``flock``) on the file beside it for as long as it runs. A start removes every
folder whose lock nobody holds, whatever its age: the staged files of an upload cut short by
a crash go at the next start, and those of other processes sharing the data directory stay.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from yilian.dicom.parse import (
    DATASET_MISMATCH,
    PROCESSING_FAILURE,
    InstanceRejected,
    PreparedInstance,
    prepare_instance,
)

logger = logging.getLogger(__name__)
STAGING = ".staging"  # under the storage root: files written, not yet indexed
# Staged files directly under .staging (the layout before per-process folders) older than
# this belong to no upload still running.
LEGACY_STALE_SECONDS = 3600


class StagingArea:
    """This process's staging folder: ``<parent>/<name>/`` beside ``<name>.lock``, which it
    holds locked until :meth:`close` (or its death)."""

    def __init__(self, parent: Path) -> None:
        parent.mkdir(parents=True, exist_ok=True)
        swept = sweep_staging(parent)
        if swept:
            logger.warning("removed %d abandoned staged file(s) from %s", swept, parent)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        # Locked under a name sweeps pass over, then renamed: no sweep can see the lock
        # file unlocked.
        fresh = parent / f".new-{name}.lock"
        self._fd: int | None = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.lock = parent / f"{name}.lock"
        os.rename(fresh, self.lock)
        self.dir = parent / name
        self.dir.mkdir()

    def close(self) -> None:
        """Remove the folder (and anything left in it) and give up the lock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        self.lock.unlink(missing_ok=True)
        os.close(fd)


def sweep_staging(parent: Path, legacy_older_than: float = LEGACY_STALE_SECONDS) -> int:
    """Remove the staging folders of stores no longer running (and old files of the former
    flat layout); returns how many staged files were removed."""
    cutoff = time.time() - legacy_older_than
    removed = 0
    for entry in os.scandir(parent):
        try:
            if entry.name.startswith(".new-"):  # a start that died before naming its lock
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            elif entry.name.endswith(".lock"):
                removed += _sweep_folder(parent, entry.name[:-len(".lock")])
            elif entry.name.endswith(".tmp") and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue  # another process's sweep got there first
    return removed


def _sweep_folder(parent: Path, name: str) -> int:
    lock = parent / f"{name}.lock"
    fd = os.open(lock, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # its process is running
        folder = parent / name
        removed = sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0
        shutil.rmtree(folder, ignore_errors=True)
        lock.unlink(missing_ok=True)
        return removed
    finally:
        os.close(fd)


def parse_staged(path: str, expected_study: str | None = None) -> PreparedInstance:
    """Parse, hash and ``fsync`` a file written to the staging directory (runs in a worker).

    Raises :class:`InstanceRejected` for a file that cannot be stored; the caller removes it.
    The result carries no bytes (``data`` is None), only what the index needs.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = _read_all(fd, size)
        p = prepare_instance(data)
        if expected_study and p.study_uid != expected_study:
            raise InstanceRejected(f"StudyInstanceUID {p.study_uid} differs from the study "
                                   f"{expected_study} in the request path", DATASET_MISMATCH,
                                   p.sop_class_uid, p.sop_uid)
        # Flushed before it is indexed, as Orthanc does by default (SyncStorageArea): an
        # indexed instance survives a power cut. fsync applies to the file, whatever the fd.
        os.fsync(fd)
    finally:
        os.close(fd)
    p.data = None
    return p


def _read_all(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = os.read(fd, size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _warm() -> int:
    return os.getpid()


def _worker_init() -> None:
    """In each worker: exit when the server process is gone. Workers wait on a queue whose
    write end they hold themselves, so a server killed without its cleanup (SIGKILL, the OOM
    killer) would otherwise leave them, and the forkserver, waiting for ever."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class ParserPool:
    """The worker processes (or threads) that parse staged files; recreated if a worker dies."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: Executor | None = None
        self._lock = threading.Lock()

    def _get(self) -> Executor:
        """The executor, started (blocking: spawning processes takes a moment, so the event
        loop calls this through a thread)."""
        with self._lock:
            if self._executor is None:
                if self.workers <= 0:
                    self._executor = ThreadPoolExecutor(4, thread_name_prefix="dicom-parse")
                else:
                    ctx = multiprocessing.get_context("forkserver")
                    ctx.set_forkserver_preload(["yilian.dicom.workers"])
                    ex = ProcessPoolExecutor(self.workers, mp_context=ctx,
                                             initializer=_worker_init)
                    # The first submit spawns every worker; wait until they all answer.
                    try:
                        for job in [ex.submit(_warm) for _ in range(self.workers)]:
                            job.result()
                    except BaseException:
                        ex.shutdown(wait=False, cancel_futures=True)
                        raise
                    self._executor = ex
            return self._executor

    async def _ready(self) -> Executor:
        ex = self._executor
        return ex if ex is not None else await asyncio.to_thread(self._get)

    def _replace(self, broken: Executor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    async def start(self) -> None:
        """Start the workers now rather than on the first upload."""
        await self._ready()

    async def parse(self, path: str, expected_study: str | None) -> PreparedInstance:
        """Parse one staged file; raises :class:`InstanceRejected` for a refused one."""
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            ex: Executor | None = None
            try:
                ex = await self._ready()
                return await loop.run_in_executor(ex, parse_staged, path, expected_study)
            except BrokenProcessPool:
                # A worker died: the file it held, or another one in flight. Once more on a
                # new pool; a file that kills that one too is refused.
                logger.warning("a DICOM parsing worker died (attempt %d)", attempt)
                if ex is not None:
                    self._replace(ex)
        raise InstanceRejected("the file could not be parsed (the parser stopped)",
                               PROCESSING_FAILURE)

    def pids(self) -> list[int]:
        """The worker processes' ids (for operations and tests)."""
        ex = self._executor
        procs = getattr(ex, "_processes", None) or {}
        return [p.pid for p in procs.values() if p.pid]

    def shutdown(self) -> None:
        with self._lock:
            ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=True, cancel_futures=True)


_POOLS: dict[int, ParserPool] = {}
_POOLS_LOCK = threading.Lock()


def parser_pool(workers: int) -> ParserPool:
    """The process-wide pool for this many workers: every application in the process (tests
    run many) shares it, rather than starting processes of its own."""
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = ParserPool(workers)
        return pool


def shutdown_pools() -> None:
    """Stop every worker (at process exit; the pools also stop with the interpreter)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.shutdown()
