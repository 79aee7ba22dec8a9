"""Teaching sessions: schedule, list, read, change, start and end (the rules are in
``workflow``; who stands where in ``access``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.teaching import workflow
from yilian.server.clinic.teaching.access import roles_of, visible_session
from yilian.server.clinic.teaching.models import (
    TeachingAttendance,
    TeachingInvitation,
    TeachingRecording,
    TeachingSession,
)
from yilian.server.clinic.teaching.notices import texts
from yilian.server.clinic.teaching.recordings import signed_url
from yilian.server.clinic.teaching.rooms import close_attendance
from yilian.server.clinic.teaching.schemas import (
    CanOut,
    InstitutionRef,
    PresenterOut,
    RecordingOut,
    TeachingSessionIn,
    TeachingSessionOut,
    TeachingSessionPatch,
    TeachingSessionsQuery,
)
from yilian.server.clinic.teaching.workflow import Roles
from yilian.server.core import audit, notify
from yilian.server.core.access import alliance_partner_ids
from yilian.server.core.db import utcnow
from yilian.server.core.errors import Forbidden, ValidationFailed
from yilian.server.core.models import CLINICAL_ROLES, Institution, User

#: The most sessions one list returns (newest windows first beyond it).
MAX_LISTED = 500


async def _check_presenter(session: AsyncSession, user: User, presenter_id: int,
                           partners: set[int] | None) -> User:
    presenter = await session.get(User, presenter_id)
    if presenter is None or (partners is not None and presenter.institution_id not in partners):
        raise ValidationFailed(f"no such user in your alliances: {presenter_id}",
                               code="unknown_presenter")
    if not workflow.may_present(presenter):
        raise ValidationFailed("the presenter must be an active clinical user",
                               code="presenter_not_clinical",
                               details={"role": presenter.role, "active": presenter.active})
    return presenter


async def _check_institutions(session: AsyncSession, ids: Sequence[int],
                              partners: set[int] | None) -> list[int]:
    """The invited institutions, each once: they must exist, and (but for an admin) be members
    of an alliance of the organiser's institution."""
    wanted = sorted(set(ids))
    found = set((await session.execute(
        select(Institution.id).where(Institution.id.in_(wanted)))).scalars())
    unknown = [i for i in wanted if i not in found or (partners is not None and i not in partners)]
    if unknown:
        raise ValidationFailed("these institutions do not exist or are not in your alliances",
                               code="unknown_institution", details={"ids": unknown[:50]})
    return wanted


async def _partners(session: AsyncSession, user: User) -> set[int] | None:
    """Where this organiser may reach: None (anywhere) for an admin."""
    return None if user.role == "admin" else await alliance_partner_ids(session,
                                                                        user.institution_id)


async def create(session: AsyncSession, secret: str, user: User, body: TeachingSessionIn,
                 ip: str | None) -> TeachingSessionOut:
    """Schedule a session; the organiser is the caller."""
    if not workflow.may_organise(user):
        raise Forbidden(f"a {user.role} may not organise teaching sessions")
    workflow.check_window(body.start, body.end)
    if body.end <= utcnow():
        raise ValidationFailed("the session's end is already past", code="invalid_window")
    partners = await _partners(session, user)
    await _check_presenter(session, user, body.presenter_id, partners)
    invited = await _check_institutions(session, body.invited_institution_ids, partners)
    ts = TeachingSession(
        title=body.title, kind=body.kind, description=body.description or None,
        start=body.start, end=body.end, presenter_id=body.presenter_id, organiser_id=user.id,
        institution_id=user.institution_id, status="scheduled", record=body.record,
        created_at=utcnow(),
        invitations=[TeachingInvitation(institution_id=i) for i in invited])
    session.add(ts)
    await session.flush()
    audit.record(session, user, "teaching_create", "teaching_session", ts.id, ip=ip,
                 detail={"invited": invited, "presenter_id": body.presenter_id})
    return (await render(session, secret, user, [ts]))[0]


def _visible_to(user: User, partners: set[int] | None) -> Select[Any]:
    stmt = select(TeachingSession)
    if user.role == "admin":
        return stmt
    invited = select(TeachingInvitation.session_id).where(
        TeachingInvitation.institution_id == user.institution_id)
    clauses = [TeachingSession.presenter_id == user.id, TeachingSession.organiser_id == user.id,
               TeachingSession.id.in_(invited)]
    if user.role == "coordinator" and partners:
        clauses.append(TeachingSession.institution_id.in_(partners))
    return stmt.where(or_(*clauses))


async def list_visible(session: AsyncSession, secret: str, user: User,
                       query: TeachingSessionsQuery) -> list[TeachingSessionOut]:
    """The sessions the caller presents, organised or is invited to (a coordinator: also those
    organised in their alliances; an admin: all): live first, then upcoming soonest first,
    then ended latest first."""
    partners = (await alliance_partner_ids(session, user.institution_id)
                if user.role == "coordinator" else None)
    stmt = _visible_to(user, partners)
    if query.status is not None:
        stmt = stmt.where(TeachingSession.status == query.status)
    if query.from_ is not None:
        stmt = stmt.where(TeachingSession.end >= query.from_)
    if query.to is not None:
        stmt = stmt.where(TeachingSession.start < query.to)
    rows: list[TeachingSession] = list((await session.execute(
        stmt.order_by(TeachingSession.start.desc(), TeachingSession.id.desc())
        .limit(MAX_LISTED))).scalars())
    order = {"live": 0, "scheduled": 1, "ended": 2}
    rows.sort(key=lambda t: (order[t.status],
                             t.start.timestamp() * (-1 if t.status == "ended" else 1), t.id))
    return await render(session, secret, user, rows)


async def read(session: AsyncSession, secret: str, user: User, teaching_id: int,
               ip: str | None) -> TeachingSessionOut:
    """One session the caller may see; while live, with how many viewers are in the room (its
    open attendance rows: one per person, on every server process)."""
    ts, _roles = await visible_session(session, user, teaching_id)
    out = (await render(session, secret, user, [ts]))[0]
    if ts.status == "live":
        out.viewers_now = await session.scalar(select(func.count()).where(
            TeachingAttendance.session_id == ts.id, TeachingAttendance.left_at.is_(None)))
    return out


async def change(session: AsyncSession, secret: str, user: User, teaching_id: int,
                 body: TeachingSessionPatch, ip: str | None) -> TeachingSessionOut:
    """Change a scheduled session (organiser or presenter)."""
    ts, roles = await visible_session(session, user, teaching_id, for_update=True)
    workflow.check_edit(roles, ts.status)
    start = body.start or ts.start
    end = body.end or ts.end
    if body.start is not None or body.end is not None:
        workflow.check_window(start, end)
        if end <= utcnow():
            raise ValidationFailed("the session's end is already past", code="invalid_window")
    changed: list[str] = []
    if body.invited_institution_ids is not None:
        # The organiser's reach decides, whoever edits (a presenter from another site may not
        # widen the audience beyond the organiser's alliances).
        organiser = await session.get(User, ts.organiser_id)
        partners = await _partners(session, organiser) if organiser is not None else set()
        wanted = await _check_institutions(session, body.invited_institution_ids, partners)
        have = {i.institution_id for i in ts.invitations}
        ts.invitations = [i for i in ts.invitations if i.institution_id in wanted] + [
            TeachingInvitation(institution_id=i) for i in wanted if i not in have]
        changed.append("invited_institution_ids")
    for field in ("title", "kind", "description", "record"):
        value = getattr(body, field)
        if value is not None:
            setattr(ts, field, value or None if field == "description" else value)
            changed.append(field)
    if body.start is not None or body.end is not None:
        if ts.start != start:
            ts.reminded_at = None  # a new start time deserves a new reminder
        ts.start, ts.end = start, end
        changed.extend(f for f in ("start", "end") if getattr(body, f) is not None)
    await session.flush()
    audit.record(session, user, "teaching_update", "teaching_session", ts.id, ip=ip,
                 detail={"fields": changed})
    return (await render(session, secret, user, [ts]))[0]


async def _invited_clinicians(session: AsyncSession, ts: TeachingSession) -> list[User]:
    ids = [i.institution_id for i in ts.invitations]
    if not ids:
        return []
    rows = await session.execute(select(User).where(
        User.institution_id.in_(ids), User.role.in_(CLINICAL_ROLES), User.active.is_(True),
        User.id != ts.presenter_id).order_by(User.id))
    return list(rows.scalars())


async def notify_invited(session: AsyncSession, ts: TeachingSession, kind: str,
                         at: datetime) -> int:
    """Send ``teaching.starting`` or ``teaching.reminder`` to the invited sites' clinicians."""
    presenter = await session.get(User, ts.presenter_id)
    name = presenter.display_name if presenter is not None else ""
    rows = notify.send(session, await _invited_clinicians(session, ts), kind,
                       texts(kind, title=ts.title, presenter=name, session_kind=ts.kind,
                             start=ts.start),
                       resource_type="teaching_session", resource_id=ts.id, at=at)
    return len(rows)


async def start(session: AsyncSession, secret: str, user: User, teaching_id: int,
                ip: str | None) -> TeachingSessionOut:
    """The presenter goes live; the invited sites' clinicians are notified."""
    ts, roles = await visible_session(session, user, teaching_id, for_update=True)
    now = utcnow()
    workflow.check_start(roles, ts.status, ts.start, ts.end, now)
    ts.status = workflow.transition(ts.status, "start")
    ts.started_at = now
    await notify_invited(session, ts, "teaching.starting", now)
    audit.record(session, user, "teaching_start", "teaching_session", ts.id, ip=ip)
    return (await render(session, secret, user, [ts]))[0]


async def finish(session: AsyncSession, ts: TeachingSession, now: datetime) -> None:
    """End ``ts`` now: its open attendance closes at ``ended_at``."""
    ts.status = workflow.transition(ts.status, "end")
    ts.ended_at = now
    await close_attendance(session, ts.id, now)


async def end(session: AsyncSession, secret: str, user: User, teaching_id: int,
              ip: str | None) -> TeachingSessionOut:
    """The presenter or organiser ends the session (or calls off a scheduled one)."""
    ts, roles = await visible_session(session, user, teaching_id, for_update=True)
    workflow.check_end(roles, ts.status)
    was = ts.status
    await finish(session, ts, utcnow())
    audit.record(session, user, "teaching_end", "teaching_session", ts.id, ip=ip,
                 detail={"from": was})
    return (await render(session, secret, user, [ts]))[0]


async def render(session: AsyncSession, secret: str, user: User,
                 sessions: Collection[TeachingSession]) -> list[TeachingSessionOut]:
    """The API's view of these sessions for ``user``: names, recordings (with links signed
    for this user when they may watch) and what they may do (``can``)."""
    if not sessions:
        return []
    ids = [t.id for t in sessions]
    people = {u.id: u for u in (await session.execute(
        select(User).where(User.id.in_({t.presenter_id for t in sessions})))).scalars()}
    inst_ids = {i.institution_id for t in sessions for i in t.invitations}
    places = {i.id: i for i in (await session.execute(
        select(Institution).where(Institution.id.in_(inst_ids)))).scalars()} if inst_ids else {}
    recordings: dict[int, list[TeachingRecording]] = {}
    for r in (await session.execute(select(TeachingRecording).where(
            TeachingRecording.session_id.in_(ids)).order_by(TeachingRecording.id))).scalars():
        recordings.setdefault(r.session_id, []).append(r)
    partners = (await alliance_partner_ids(session, user.institution_id)
                if user.role == "coordinator" else None)
    now = utcnow()
    out = []
    for ts in sessions:
        roles = await roles_of(session, user, ts, partners)
        presenter = people.get(ts.presenter_id)
        out.append(TeachingSessionOut(
            id=ts.id, title=ts.title, kind=ts.kind,  # type: ignore[arg-type]
            description=ts.description, start=ts.start, end=ts.end,
            status=ts.status,  # type: ignore[arg-type]
            presenter=PresenterOut(
                id=ts.presenter_id, display_name=presenter.display_name if presenter else "",
                institution_id=presenter.institution_id if presenter else 0),
            organiser_id=ts.organiser_id, institution_id=ts.institution_id,
            invited_institutions=[
                InstitutionRef(id=i.institution_id, name=places[i.institution_id].name,
                               local_name=places[i.institution_id].local_name)
                for i in ts.invitations if i.institution_id in places],
            record=ts.record, started_at=ts.started_at, ended_at=ts.ended_at,
            created_at=ts.created_at,
            recordings=[_recording(r, secret, user, roles, now)
                        for r in recordings.get(ts.id, [])],
            can=_can(roles, ts, now)))
    return out


def _recording(r: TeachingRecording, secret: str, user: User, roles: Roles,
               now: datetime) -> RecordingOut:
    url = (signed_url(secret, r.id, user.id, now)
           if roles.watcher and r.status == "complete" else None)
    return RecordingOut(id=r.id, url=url, duration_s=r.duration_s, bytes=r.bytes,
                        started_at=r.started_at, container=r.container,  # type: ignore[arg-type]
                        status=r.status)  # type: ignore[arg-type]


def _can(roles: Roles, ts: TeachingSession, now: datetime) -> CanOut:
    scheduled = ts.status == "scheduled"
    return CanOut(
        start=roles.presenter and scheduled and ts.start - workflow.START_EARLY <= now < ts.end,
        end=(roles.presenter or roles.organiser) and ts.status in workflow.OPEN,
        edit=(roles.presenter or roles.organiser) and scheduled,
        present=roles.presenter and ts.status == "live",
        watch=roles.watcher and ts.status in workflow.OPEN,
        attendance=roles.manager)
