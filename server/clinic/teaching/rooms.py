"""Who may join and speak in a teaching session's room, and the attendance it keeps."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.teaching.access import roles_of
from yilian.server.clinic.teaching.models import TeachingAttendance, TeachingSession
from yilian.server.clinic.teaching.workflow import OPEN, Roles, session_id
from yilian.server.core import audit
from yilian.server.core.db import utcnow
from yilian.server.core.errors import Forbidden, RoomClosed
from yilian.server.core.models import User


async def watchable(session: AsyncSession, user: User, object_id: str
                    ) -> tuple[TeachingSession, Roles]:
    """The session of ``teaching:<object_id>`` if ``user`` may watch it: ``Forbidden`` alike
    for "no such session" and "not yours", ``RoomClosed`` once it has ended."""
    known = session_id(object_id)
    ts = await session.get(TeachingSession, known) if known is not None else None
    if ts is not None:
        roles = await roles_of(session, user, ts)
        if roles.watcher:
            if ts.status not in OPEN:
                raise RoomClosed(f"teaching session {object_id} has ended; its room is closed")
            return ts, roles
    raise Forbidden(f"you are not invited to teaching session {object_id}")


async def close_attendance(session: AsyncSession, teaching_id: int, at: datetime,
                           user_id: int | None = None) -> None:
    """Close the open attendance rows of the session (of one user, if given) at ``at``."""
    stmt = update(TeachingAttendance).where(
        TeachingAttendance.session_id == teaching_id, TeachingAttendance.left_at.is_(None))
    if user_id is not None:
        stmt = stmt.where(TeachingAttendance.user_id == user_id)
    await session.execute(stmt.values(left_at=at).execution_options(synchronize_session=False))


class TeachingRooms:
    """``signaling.gate.RoomRules`` for ``teaching:<id>``: the presenter hosts; the organiser
    and users of invited institutions watch while the session is scheduled or live.

    Attendance: each admission of a viewer opens a row (unless one is already open for them:
    a second tab is one stay), ``left`` closes it. The presenter is not an attendee."""

    async def admit(self, session: AsyncSession, user: User, object_id: str) -> bool:
        """Let a watcher in (audited) and open their attendance; True for the presenter."""
        ts, roles = await watchable(session, user, object_id)
        audit.record(session, user, "rtc_join", "teaching_session", ts.id)
        if roles.presenter:
            return True
        open_row = await session.scalar(
            select(TeachingAttendance.id).where(
                TeachingAttendance.session_id == ts.id, TeachingAttendance.user_id == user.id,
                TeachingAttendance.left_at.is_(None)).limit(1))
        if open_row is None:
            session.add(TeachingAttendance(session_id=ts.id, user_id=user.id,
                                           institution_id=user.institution_id,
                                           joined_at=utcnow()))
        return False

    async def left(self, session: AsyncSession, user: User, object_id: str) -> None:
        """The user's last peer has left the room for good: close their stay."""
        known = session_id(object_id)
        if known is not None:
            await close_attendance(session, known, utcnow(), user.id)

    async def may_speak(self, session: AsyncSession, user: User, object_id: str) -> None:
        """Questions are for those who may watch, while the room is open."""
        await watchable(session, user, object_id)

    async def still_open(self, session: AsyncSession, object_ids: Collection[str]) -> set[str]:
        """The rooms whose session is scheduled or live."""
        ids = {i for o in object_ids if (i := session_id(o)) is not None}
        if not ids:
            return set()
        rows = await session.execute(select(TeachingSession.id).where(
            TeachingSession.id.in_(ids), TeachingSession.status.in_(OPEN)))
        return {str(i) for i in rows.scalars()}
