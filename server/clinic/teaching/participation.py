"""Who attended a session and what they asked: the reports read from the room's rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, column, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.teaching import attendance
from yilian.server.clinic.teaching.access import visible_session
from yilian.server.clinic.teaching.models import TeachingAttendance, TeachingSession
from yilian.server.clinic.teaching.schemas import (
    AttendeeOut,
    InstitutionAttendanceOut,
    QuestionOut,
)
from yilian.server.clinic.teaching.workflow import Roles
from yilian.server.core import audit
from yilian.server.core.csvfile import to_csv
from yilian.server.core.db import UTCDateTime, utcnow
from yilian.server.core.errors import Forbidden
from yilian.server.core.models import Institution, User

# The signalling package owns ``rtc_chat_messages`` (``yilian.signaling.models``), and the
# layers contract keeps the clinic from importing it: the columns read here are named as a
# lightweight table, which holds no schema of its own (the migration and the model do).
_chat = table(
    "rtc_chat_messages",
    column("id", Integer), column("room", String), column("teaching_session_id", Integer),
    column("user_id", Integer), column("text", Text), column("at", UTCDateTime()),
    column("answered_at", UTCDateTime()),
)

CSV_HEADER = ("user_id", "display_name", "institution_id", "institution_name",
              "institution_local_name", "joined_at", "left_at", "minutes")


def _require_manager(roles: Roles, teaching_id: int) -> None:
    if not roles.manager:
        raise Forbidden("attendance is for the presenter, the organiser and the alliance's "
                        "coordinators", details={"session_id": teaching_id})


async def _people(session: AsyncSession, ts: TeachingSession
                  ) -> tuple[list[attendance.Attendee], dict[int, User], dict[int, Institution]]:
    rows = (await session.execute(select(TeachingAttendance).where(
        TeachingAttendance.session_id == ts.id))).scalars()
    stays = [attendance.Stay(r.user_id, r.institution_id, r.joined_at, r.left_at) for r in rows]
    people = attendance.merge(stays, started_at=ts.started_at, ended_at=ts.ended_at,
                              now=utcnow())
    users = {u.id: u for u in (await session.execute(select(User).where(
        User.id.in_({p.user_id for p in people})))).scalars()} if people else {}
    places = {i.id: i for i in (await session.execute(select(Institution).where(
        Institution.id.in_({p.institution_id for p in people})))).scalars()} if people else {}
    return people, users, places


async def attendees(session: AsyncSession, user: User, teaching_id: int, ip: str | None,
                    *, export: bool = False) -> list[AttendeeOut]:
    """One row per person (reconnects merged), in order of first joining."""
    ts, roles = await visible_session(session, user, teaching_id)
    _require_manager(roles, ts.id)
    people, users, places = await _people(session, ts)
    if export:
        audit.record(session, user, "teaching_attendance_export", "teaching_session", ts.id,
                     ip=ip, detail={"rows": len(people)})
    return [AttendeeOut(
        user_id=p.user_id,
        display_name=users[p.user_id].display_name if p.user_id in users else "",
        institution_id=p.institution_id,
        institution_name=places[p.institution_id].name if p.institution_id in places else "",
        joined_at=p.joined_at, left_at=p.left_at, minutes=p.minutes) for p in people]


async def attendance_csv(session: AsyncSession, user: User, teaching_id: int,
                         ip: str | None) -> bytes:
    """The attendance as CSV (UTF-8 with BOM), times in ISO 8601 UTC; audited as an export."""
    rows = await attendees(session, user, teaching_id, ip, export=True)
    local = {i.id: i.local_name for i in (await session.execute(select(Institution).where(
        Institution.id.in_({r.institution_id for r in rows})))).scalars()} if rows else {}
    return to_csv(CSV_HEADER, (
        (r.user_id, r.display_name, r.institution_id, r.institution_name,
         local.get(r.institution_id) or "", _iso(r.joined_at), _iso(r.left_at), r.minutes)
        for r in rows))


def _iso(at: datetime | None) -> str:
    return "" if at is None else at.isoformat()


async def by_institution(session: AsyncSession, user: User, teaching_id: int
                         ) -> list[InstitutionAttendanceOut]:
    """Distinct people and minutes per institution, most people first."""
    ts, roles = await visible_session(session, user, teaching_id)
    _require_manager(roles, ts.id)
    people, _users, places = await _people(session, ts)
    totals = attendance.by_institution(people)
    out = [InstitutionAttendanceOut(
        institution_id=iid, name=places[iid].name if iid in places else "",
        person_times=count, minutes=mins) for iid, (count, mins) in totals.items()]
    out.sort(key=lambda r: (-r.person_times, r.name, r.institution_id))
    return out


async def questions(session: AsyncSession, user: User, teaching_id: int,
                    ip: str | None = None) -> list[QuestionOut]:
    """The questions asked in the session's room, oldest first (kept for the replay page);
    for those who may watch it and those who run it. An overseer who reads them without
    being a participant (a coordinator or admin) is audited, as an attendance export is."""
    ts, roles = await visible_session(session, user, teaching_id)
    if not (roles.watcher or roles.manager):
        raise Forbidden("the questions are for the session's participants")
    rows = (await session.execute(
        select(_chat.c.id, _chat.c.user_id, _chat.c.text, _chat.c.at, _chat.c.answered_at,
               User.display_name, Institution.name)
        .join(User, User.id == _chat.c.user_id)
        .join(Institution, Institution.id == User.institution_id)
        .where(_chat.c.room == f"teaching:{ts.id}")
        .order_by(_chat.c.at, _chat.c.id))).all()
    if not roles.watcher:
        audit.record(session, user, "teaching_questions_read", "teaching_session", ts.id,
                     ip=ip, detail={"rows": len(rows)})
    return [QuestionOut(id=r[0], user_id=r[1], text=r[2], at=r[3], answered_at=r[4],
                        display_name=r[5], institution_name=r[6]) for r in rows]
