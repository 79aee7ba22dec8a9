"""Recordings of teaching sessions: signed links, serving with Range, disk usage, and the
repair at start-up of rows a crash left ``recording``.

A ``<video>`` element cannot send the bearer token, so a recording is fetched by a link signed
with the install's secret (HMAC-SHA256), bound to one user and expiring after ``LINK_TTL``; the
server checks at each request that this user still may watch the session, and audits it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.teaching.media import RECORDINGS_DIR
from yilian.server.clinic.teaching.models import TeachingRecording, TeachingSession
from yilian.server.core.db import Database, utcnow
from yilian.server.core.errors import Forbidden

logger = logging.getLogger(__name__)

#: How long a signed link works.
LINK_TTL = timedelta(hours=2)
CONTENT_TYPES = {"webm": "video/webm", "mkv": "video/x-matroska"}


def _key(secret: str) -> bytes:
    # A key of its own, so a link's signature says nothing about other uses of the secret.
    return hashlib.sha256(b"yilian-teaching-recording:" + secret.encode()).digest()


def signature(secret: str, recording_id: int, user_id: int, expires: int) -> str:
    """The link's signature over the recording, the user it was given to, and its expiry."""
    message = f"{recording_id}:{user_id}:{expires}".encode()
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signed_url(secret: str, recording_id: int, user_id: int, now: datetime) -> str:
    """``/api/teaching-recordings/<id>?uid=&exp=&sig=``, valid for ``LINK_TTL``."""
    expires = int((now + LINK_TTL).timestamp())
    sig = signature(secret, recording_id, user_id, expires)
    return f"/api/teaching-recordings/{recording_id}?uid={user_id}&exp={expires}&sig={sig}"


def check_link(secret: str, recording_id: int, user_id: int, expires: int, sig: str,
               now: datetime) -> None:
    """Raise 403 for a forged, altered or expired link (the same answer, with a code)."""
    expected = signature(secret, recording_id, user_id, expires)
    if not hmac.compare_digest(expected, sig.lower()):
        raise Forbidden("the recording link is not valid", code="invalid_link")
    if now.timestamp() >= expires:
        raise Forbidden("the recording link has expired; open the session again for a new one",
                        code="link_expired")


@dataclass(frozen=True)
class Probe:
    """What PyAV reads from a recording file."""

    ok: bool
    duration_s: float
    size: int


def probe(path: Path) -> Probe:
    """Open the file with PyAV and measure it (blocking; run it in a thread). A file the relay
    was writing when the server died usually lacks its index and duration but still plays up
    to its last whole packet: the duration is where the last packet read ends."""
    import av

    try:
        size = path.stat().st_size
    except OSError:
        return Probe(False, 0.0, 0)
    if size == 0:
        return Probe(False, 0.0, 0)
    try:
        with av.open(str(path)) as container:
            # The packets, not the header: a file cut short keeps the duration its header
            # announced (or none), and only what can be read plays. Demuxing does not decode,
            # so even an hour's file is read in seconds.
            duration = 0.0
            for packet in container.demux():
                if packet.pts is not None and packet.time_base is not None:
                    end = packet.pts + (packet.duration or 0)
                    duration = max(duration, float(end * packet.time_base))
            packets = any(s.type in ("video", "audio") for s in container.streams)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        logger.warning("recording %s is unreadable: %s", path, exc)
        return Probe(False, 0.0, size)
    return Probe(packets and duration > 0, duration, size)


#: A recording still ``recording`` this long after its session ended was orphaned (the relay
#: closes it within seconds of the presenter stopping).
ORPHANED_AFTER = timedelta(minutes=2)


async def recover(db: Database, data_dir: Path) -> int:
    """Rows left ``recording`` by a server that stopped mid-broadcast: ``complete`` with the
    file's figures when PyAV can read it, else ``failed``. Returns how many were repaired.

    Only rows whose session has ended (``ORPHANED_AFTER`` ago) are touched: a live session's
    recording may be being written by another server process right now. Runs at start-up and
    with the sweep, so a crash mid-broadcast is repaired once the session ends (by its
    presenter or by the sweep)."""
    cutoff = utcnow() - ORPHANED_AFTER
    async with db.read() as session:
        rows = (await session.execute(
            select(TeachingRecording.id, TeachingRecording.path)
            .join(TeachingSession, TeachingSession.id == TeachingRecording.session_id)
            .where(TeachingRecording.status == "recording", TeachingSession.status == "ended",
                   TeachingSession.ended_at < cutoff))).all()
    repaired = 0
    for rid, rel in rows:
        found = await asyncio.to_thread(probe, data_dir / rel)
        async with db.write() as session:
            row = await session.get(TeachingRecording, rid)
            if row is None or row.status != "recording":
                continue
            row.status = "complete" if found.ok else "failed"
            row.duration_s = found.duration_s
            row.bytes = found.size
            row.ended_at = row.ended_at or row.started_at + timedelta(seconds=found.duration_s)
            repaired += 1
        logger.info("recording %s left by a stopped server marked %s", rid,
                    "complete" if found.ok else "failed")
    return repaired


def _tree_bytes(root: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


async def usage(session: AsyncSession, data_dir: Path) -> dict[str, object]:
    """Rows by status, their bytes, and what the folder really holds and the disk has left."""
    rows = (await session.execute(
        select(TeachingRecording.status, TeachingRecording.bytes))).all()
    by_status: dict[str, int] = {}
    known = 0
    for status, size in rows:
        by_status[status] = by_status.get(status, 0) + 1
        known += size or 0
    root = data_dir / RECORDINGS_DIR
    disk = await asyncio.to_thread(_tree_bytes, root)
    free = (await asyncio.to_thread(shutil.disk_usage, data_dir)).free
    return {"recordings": len(rows), "bytes": known, "disk_bytes": disk, "free_bytes": free,
            "by_status": by_status}
