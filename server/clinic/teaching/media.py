"""What the broadcast relay asks of teaching sessions: who may publish, and where recordings go.

Implements ``yilian.signaling.sfu.ports.BroadcastRules``. The clinic does not import the
signalling package (the layers contract), so the relay's ``RecordingTarget`` class is handed in
by the app factory as ``target``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.teaching.models import TeachingRecording, TeachingSession
from yilian.server.clinic.teaching.workflow import session_id
from yilian.server.core import audit
from yilian.server.core.errors import Conflict, Forbidden, NotFound, RoomClosed
from yilian.server.core.models import User

T = TypeVar("T")

CONTAINERS = {"webm": "webm", "mkv": "mkv"}
#: Where recordings live, relative to the data directory.
RECORDINGS_DIR = Path("recordings") / "teaching"


def recording_path(teaching_id: int, recording_id: int, container: str,
                   started_at: datetime) -> Path:
    """The file of a recording, relative to the data directory: one folder per session (easy
    to archive or remove), the recording's id and start in the name."""
    return RECORDINGS_DIR / str(teaching_id) / (
        f"{recording_id}-{started_at:%Y%m%dT%H%M%SZ}.{CONTAINERS[container]}")


class TeachingMedia(Generic[T]):
    """``BroadcastRules`` for ``teaching:<id>`` rooms: only the presenter of a live session
    publishes; recordings get a row and a file under ``<data_dir>/recordings/teaching/``."""

    def __init__(self, data_dir: Path, target: Callable[[int, Path], T]) -> None:
        self._data_dir = data_dir
        self._target = target

    async def may_publish(self, session: AsyncSession, user: User, object_id: str) -> bool:
        """Raise ``Forbidden`` unless the presenter, ``RoomClosed`` once ended, ``not_live``
        while scheduled; return whether the session is recorded."""
        known = session_id(object_id)
        ts = await session.get(TeachingSession, known) if known is not None else None
        if ts is None or ts.presenter_id != user.id or not user.active:
            raise Forbidden(f"only the presenter may publish in teaching session {object_id}")
        if ts.status == "ended":
            raise RoomClosed(f"teaching session {object_id} has ended")
        if ts.status != "live":
            raise Conflict(f"teaching session {object_id} has not been started yet",
                           code="not_live")
        audit.record(session, user, "teaching_publish", "teaching_session", ts.id)
        return ts.record

    async def recording_started(self, session: AsyncSession, object_id: str, container: str,
                                started_at: datetime) -> T:
        """Create the recording's row and its folder; the relay writes the file."""
        known = session_id(object_id)
        ts = await session.get(TeachingSession, known) if known is not None else None
        if ts is None:
            raise NotFound(f"no such teaching session: {object_id}")
        if container not in CONTAINERS:
            raise ValueError(f"unknown recording container {container!r}")
        row = TeachingRecording(session_id=ts.id, container=container, path="",
                                started_at=started_at, status="recording")
        session.add(row)
        await session.flush()
        relative = recording_path(ts.id, row.id, container, started_at)
        row.path = relative.as_posix()
        path = self._data_dir / relative
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True, mode=0o700)
        return self._target(row.id, path)

    async def recording_finished(self, session: AsyncSession, recording_id: int,
                                 duration_s: float, size: int, ended_at: datetime,
                                 ok: bool) -> None:
        """Keep the figures of the finished file; a failed one stays listed as ``failed``."""
        row = await session.get(TeachingRecording, recording_id)
        if row is None:
            return  # the session was deleted meanwhile; nothing to keep
        row.status = "complete" if ok else "failed"
        row.duration_s = max(0.0, float(duration_s))
        row.bytes = max(0, int(size))
        row.ended_at = ended_at
