"""The periodic jobs of teaching sessions: reminders before the start, ending sessions left
behind, and repairing recordings a crash left open."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from yilian.server.clinic.teaching import recordings, workflow
from yilian.server.clinic.teaching.models import TeachingSession
from yilian.server.clinic.teaching.service import finish, notify_invited
from yilian.server.core.db import Database, utcnow

logger = logging.getLogger(__name__)
#: Seconds between runs: reminders go out within a minute of their time.
SWEEP_SECONDS = 60.0
#: Sessions handled per run (the next run takes the rest).
BATCH = 200


async def remind(db: Database, now: datetime | None = None) -> int:
    """``teaching.reminder`` to the invited sites, once, ``REMIND_BEFORE`` the start."""
    now = now or utcnow()
    sent = 0
    async with db.write() as session:
        due = (await session.execute(select(TeachingSession).where(
            TeachingSession.status == "scheduled", TeachingSession.reminded_at.is_(None),
            TeachingSession.start <= now + workflow.REMIND_BEFORE,
            TeachingSession.start > now).limit(BATCH)
            .with_for_update(skip_locked=True))).scalars().all()
        for ts in due:
            ts.reminded_at = now
            await notify_invited(session, ts, "teaching.reminder", now)
            sent += 1
    return sent


async def end_abandoned(db: Database, now: datetime | None = None) -> int:
    """End sessions ``ABANDON_AFTER`` past their scheduled end: a live one whose presenter
    never came back ends at its scheduled end (or now, if it started after it), a scheduled
    one never started is called off now."""
    now = now or utcnow()
    ended = 0
    async with db.write() as session:
        stale = (await session.execute(select(TeachingSession).where(
            TeachingSession.status.in_(workflow.OPEN),
            TeachingSession.end < now - workflow.ABANDON_AFTER).limit(BATCH)
            # a session a user is ending right now is left to them (PostgreSQL; SQLite
            # serialises writers anyway)
            .with_for_update(skip_locked=True))).scalars().all()
        for ts in stale:
            at = now
            if ts.status == "live" and ts.started_at is not None and ts.started_at <= ts.end:
                at = ts.end
            await finish(session, ts, at)
            ended += 1
            logger.info("teaching session %s ended by the sweep (was %s)", ts.id,
                        "live" if ts.started_at else "scheduled")
    return ended


async def sweep(db: Database, data_dir: Path) -> None:
    """One run of every teaching job."""
    await remind(db)
    await end_abandoned(db)
    await recordings.recover(db, data_dir)
