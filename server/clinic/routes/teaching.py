"""Teaching broadcasts over HTTP: schedule, list, read, change, start, end, attendance,
questions and recordings (the rules are in ``clinic.teaching``)."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from yilian.server.clinic.teaching import participation, recordings, service
from yilian.server.clinic.teaching.access import roles_of
from yilian.server.clinic.teaching.models import TeachingRecording, TeachingSession
from yilian.server.clinic.teaching.schemas import (
    AttendeeOut,
    InstitutionAttendanceOut,
    QuestionOut,
    RecordingUsageOut,
    TeachingSessionIn,
    TeachingSessionOut,
    TeachingSessionPatch,
    TeachingSessionsQuery,
)
from yilian.server.core import audit
from yilian.server.core.access import require_role
from yilian.server.core.api import ApiRequest, ApiRouter
from yilian.server.core.db import utcnow
from yilian.server.core.errors import Forbidden, NotFound, ValidationFailed
from yilian.server.core.models import User
from yilian.server.core.schemas import Id, Int

router = ApiRouter()
TAG = "teaching"


@router.route("POST", "/api/teaching-sessions", summary="Schedule a teaching broadcast: a "
              "clinical presenter, a time window and the institutions invited", tag=TAG,
              body=TeachingSessionIn, response=TeachingSessionOut, status=201)
async def create_teaching_session(req: ApiRequest) -> TeachingSessionOut:
    async with req.db.write() as session:
        return await service.create(session, req.settings.secret_key, req.user, req.body,
                                    req.ip)


@router.route("GET", "/api/teaching-sessions", summary="Sessions the caller presents, "
              "organised or is invited to (coordinators: also their alliances'; admins: all): "
              "live first, then upcoming, then ended", tag=TAG, query=TeachingSessionsQuery,
              response=list[TeachingSessionOut])
async def list_teaching_sessions(req: ApiRequest) -> list[TeachingSessionOut]:
    async with req.db.read() as session:
        return await service.list_visible(session, req.settings.secret_key, req.user, req.query)


@router.route("GET", "/api/teaching-sessions/{id}", summary="One teaching session, its "
              "recordings (with links signed for the caller) and what the caller may do",
              tag=TAG, response=TeachingSessionOut)
async def get_teaching_session(req: ApiRequest) -> TeachingSessionOut:
    async with req.db.read() as session:
        return await service.read(session, req.settings.secret_key, req.user, req.path_id(),
                                  req.ip)


@router.route("PATCH", "/api/teaching-sessions/{id}", summary="Change a scheduled session "
              "(organiser or presenter): title, kind, times, invitations, description, record",
              tag=TAG, body=TeachingSessionPatch, response=TeachingSessionOut)
async def update_teaching_session(req: ApiRequest) -> TeachingSessionOut:
    async with req.db.write() as session:
        return await service.change(session, req.settings.secret_key, req.user, req.path_id(),
                                    req.body, req.ip)


@router.route("POST", "/api/teaching-sessions/{id}/start", summary="Go live (the presenter, "
              "from 30 minutes before the start until the end); the invited sites' clinicians "
              "are notified", tag=TAG, response=TeachingSessionOut)
async def start_teaching_session(req: ApiRequest) -> TeachingSessionOut:
    async with req.db.write() as session:
        return await service.start(session, req.settings.secret_key, req.user, req.path_id(),
                                   req.ip)


@router.route("POST", "/api/teaching-sessions/{id}/end", summary="End a live session, or "
              "call off a scheduled one (presenter or organiser)", tag=TAG,
              response=TeachingSessionOut)
async def end_teaching_session(req: ApiRequest) -> TeachingSessionOut:
    async with req.db.write() as session:
        return await service.end(session, req.settings.secret_key, req.user, req.path_id(),
                                 req.ip)


@router.route("GET", "/api/teaching-sessions/{id}/attendance", summary="One row per attendee "
              "(reconnects merged: first join, last leave, minutes of the union of their "
              "stays); with ?format=csv the same as a spreadsheet (text/csv, UTF-8 with BOM)",
              tag=TAG, response=list[AttendeeOut])
async def teaching_attendance(req: ApiRequest) -> list[AttendeeOut] | web.Response:
    # ``format`` is read here rather than declared as a query model: the OpenAPI document
    # gives one content type per route, and this one's is the JSON list.
    wanted = req.request.query.get("format", "json")
    if wanted not in ("json", "csv"):
        raise ValidationFailed("format is json or csv", details={"errors": [
            {"loc": ["query", "format"], "msg": "expected json or csv", "type": "enum"}]})
    teaching_id = req.path_id()
    if wanted == "csv":
        async with req.db.read() as session:
            body = await participation.attendance_csv(session, req.user, teaching_id, req.ip)
        return web.Response(body=body, content_type="text/csv", charset="utf-8", headers={
            "Content-Disposition":
                f'attachment; filename="teaching-{teaching_id}-attendance.csv"',
            "Cache-Control": "no-store"})
    async with req.db.read() as session:
        return await participation.attendees(session, req.user, teaching_id, req.ip)


@router.route("GET", "/api/teaching-sessions/{id}/attendance/by-institution",
              summary="Attendance per institution: distinct people and their minutes", tag=TAG,
              response=list[InstitutionAttendanceOut])
async def teaching_attendance_by_institution(req: ApiRequest
                                             ) -> list[InstitutionAttendanceOut]:
    async with req.db.read() as session:
        return await participation.by_institution(session, req.user, req.path_id())


@router.route("GET", "/api/teaching-sessions/{id}/questions", summary="The questions asked in "
              "the session's room, oldest first, with answered marks", tag=TAG,
              response=list[QuestionOut])
async def teaching_questions(req: ApiRequest) -> list[QuestionOut]:
    async with req.db.read() as session:
        return await participation.questions(session, req.user, req.path_id(), req.ip)


@router.route("GET", "/api/teaching-recordings/usage", summary="Disk used by teaching "
              "recordings (admins)", tag=TAG, response=RecordingUsageOut)
async def teaching_recordings_usage(req: ApiRequest) -> RecordingUsageOut:
    require_role(req.user, ("admin",), "read the recordings' disk usage")
    async with req.db.read() as session:
        figures = await recordings.usage(session, req.settings.data_dir)
    return RecordingUsageOut.model_validate(figures)


def _first_range(request: web.Request) -> bool:
    """Whether the request reads the file from its start (no Range, or one from byte 0); a
    malformed Range counts too (it is answered 416, and is still an attempt)."""
    try:
        return request.http_range.start in (None, 0)
    except ValueError:
        return True


Sig = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]


class RecordingLinkQuery(BaseModel):
    uid: Id
    exp: Annotated[Int, Field(ge=0, le=2**40)]
    sig: Sig


@router.route("GET", "/api/teaching-recordings/{id}", summary="A recording, by the signed "
              "link in its session (bound to one user, valid two hours); HTTP Range supported",
              tag=TAG, query=RecordingLinkQuery, auth=False, content_type="video/webm")
async def get_teaching_recording(req: ApiRequest) -> web.StreamResponse:
    recording_id = req.path_id()
    q: RecordingLinkQuery = req.query
    recordings.check_link(req.settings.secret_key, recording_id, q.uid, q.exp, q.sig, utcnow())
    async with req.db.write() as session:
        row = await session.get(TeachingRecording, recording_id)
        user = await session.get(User, q.uid)
        ts = await session.get(TeachingSession, row.session_id) if row is not None else None
        if row is None or ts is None:
            raise NotFound(f"no such recording: {recording_id}")
        # The link proves who it was given to; whether they still may watch is checked now.
        if user is None or not user.active or not (await roles_of(session, user, ts)).watcher:
            raise Forbidden("this recording is for the session's participants")
        if row.status != "complete":
            raise NotFound(f"recording {recording_id} is {row.status}")
        path = req.settings.data_dir / row.path
        # A player fetches a file in many ranges: the viewing is audited once, at its start.
        if _first_range(req.request):
            audit.record(session, user, "teaching_recording_download", "teaching_session",
                         ts.id, ip=req.ip, detail={"recording_id": row.id})
    if not path.is_file():
        raise NotFound(f"the file of recording {recording_id} is missing")
    return web.FileResponse(path, headers={
        "Content-Type": recordings.CONTENT_TYPES[row.container],
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'inline; filename="teaching-{ts.id}-{row.id}.{row.container}"'})
