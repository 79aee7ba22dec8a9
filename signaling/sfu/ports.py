"""What the broadcast relay needs from the package that owns teaching sessions.

``create_app`` hands ``setup_rtc`` one ``BroadcastRules`` (``clinic.teaching.media``); the
relay never imports the clinic. Each method runs on a session of the signalling server's,
inside its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core.models import User


@dataclass(frozen=True)
class RecordingTarget:
    """Where a new recording goes: its row's id and the file to write (parent exists)."""

    recording_id: int
    path: Path


class BroadcastRules(Protocol):
    """Teaching sessions as the relay sees them; ``object_id`` is the ``<id>`` of
    ``teaching:<id>``."""

    async def may_publish(self, session: AsyncSession, user: User, object_id: str) -> bool:
        """Raise ``Forbidden`` unless ``user`` presents this session, ``RoomClosed`` once it
        has ended, and ``Conflict`` (code ``not_live``) while it is still ``scheduled``;
        return whether it is to be recorded."""

    async def recording_started(self, session: AsyncSession, object_id: str, container: str,
                                started_at: datetime) -> RecordingTarget:
        """Create the recording's row (``container``: ``webm`` or ``mkv``) and choose its
        file under the data directory."""

    async def recording_finished(self, session: AsyncSession, recording_id: int,
                                 duration_s: float, size: int, ended_at: datetime,
                                 ok: bool) -> None:
        """The file is complete (``ok``) or failed (then it may be partial or missing)."""
