"""Teaching sessions over HTTP on the real app and database: who may create, see, start, end,
join and download; transitions; attendance (merged, CSV, by institution); questions;
recordings (signed links, Range); bad input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select, update

from tests.conftest import Api
from yilian.server.clinic.teaching import recordings
from yilian.server.clinic.teaching.media import TeachingMedia
from yilian.server.clinic.teaching.models import (
    TeachingAttendance,
    TeachingRecording,
    TeachingSession,
)
from yilian.server.clinic.teaching.rooms import TeachingRooms
from yilian.server.core import keys
from yilian.server.core.db import Database, utcnow
from yilian.server.core.errors import Conflict, Forbidden, RoomClosed
from yilian.server.core.models import AuditEntry, Notification, User

NAMES = ("expert", "coordinator", "county", "township", "village", "admin", "guilin_doctor",
         "guilin_coordinator", "maoming_radiology", "gdph_radiology")


@pytest.fixture
async def people(api: Api) -> dict[str, Api]:
    logged = await asyncio.gather(*(api.login(n) for n in NAMES))
    return dict(zip(NAMES, logged, strict=True))


@pytest.fixture
async def places(api: Api, people: dict[str, Api]) -> dict[str, int]:
    status, rows = await people["admin"].get("/api/institutions")
    assert status == 200, rows
    by_name = {r["name"]: r["id"] for r in rows}
    return {"gdph": by_name["Guangdong Provincial People's Hospital"],
            "dianbai": by_name["Dianbai District People's Hospital"],
            "shalang": by_name["Shalang Town Central Health Centre"],
            "shangtang": by_name["Shangtang Village Clinic"],
            "guilin": by_name["Guilin People's Hospital"]}


def window(start_in: timedelta = timedelta(minutes=5),
           length: timedelta = timedelta(hours=1)) -> tuple[str, str]:
    start = datetime.now(UTC).replace(microsecond=0) + start_in
    return start.isoformat(), (start + length).isoformat()


async def schedule(organiser: Api, presenter: Api, invited: list[int], **changes: Any
                   ) -> tuple[int, Any]:
    start, end = window()
    body = {"title": "心电图判读 ECG reading", "kind": "lecture", "start": start, "end": end,
            "presenter_id": presenter.user["id"], "invited_institution_ids": invited,
            "description": "for township doctors"} | changes
    return await organiser.post("/api/teaching-sessions", body)


@pytest.fixture
async def lecture(people: dict[str, Api], places: dict[str, int]) -> dict[str, Any]:
    """Organised by the Guangdong coordinator, presented by ``expert``, for Dianbai and
    Shalang."""
    status, body = await schedule(people["coordinator"], people["expert"],
                                  [places["shalang"], places["dianbai"], places["dianbai"]])
    assert status == 201, body
    return body


def user_id(client: Api) -> int:
    assert client.user is not None
    return int(client.user["id"])


def db_of(server: TestServer) -> Database:
    return server.app[keys.DATABASE]


async def test_create_returns_the_session_as_the_contract_says(
        lecture: dict[str, Any], people: dict[str, Api], places: dict[str, int]) -> None:
    assert lecture["status"] == "scheduled" and lecture["kind"] == "lecture"
    assert lecture["presenter"] == {"id": people["expert"].user["id"],
                                    "display_name": people["expert"].user["display_name"],
                                    "institution_id": places["gdph"]}
    assert lecture["organiser_id"] == people["coordinator"].user["id"]
    assert [i["id"] for i in lecture["invited_institutions"]] == sorted(
        [places["dianbai"], places["shalang"]])  # the duplicate invitation kept once
    assert lecture["record"] is True and lecture["recordings"] == []
    assert lecture["started_at"] is None and lecture["ended_at"] is None
    assert lecture["can"] == {"start": False, "end": True, "edit": True, "present": False,
                              "watch": True, "attendance": True}


async def test_who_sees_what(lecture: dict[str, Any], people: dict[str, Api]) -> None:
    sid = lecture["id"]
    seen = {"expert", "coordinator", "county", "township", "admin"}
    for name, client in people.items():
        status, body = await client.get(f"/api/teaching-sessions/{sid}")
        listed = await client.get("/api/teaching-sessions", params={"status": "scheduled"})
        ids = [s["id"] for s in listed[1]]
        if name in seen:
            assert status == 200, (name, body)
            assert sid in ids, name
        else:  # not invited, other alliance: the session does not exist for them
            assert status == 404 and body["error"]["code"] == "not_found", name
            assert sid not in ids, name
    status, body = await people["county"].get(f"/api/teaching-sessions/{sid}")
    assert body["can"] == {"start": False, "end": False, "edit": False, "present": False,
                           "watch": True, "attendance": False}
    status, body = await people["expert"].get(f"/api/teaching-sessions/{sid}")
    assert body["can"]["start"] is True and body["can"]["edit"] is True


async def test_who_may_start_end_and_change(lecture: dict[str, Any], people: dict[str, Api],
                                            server: TestServer) -> None:
    sid = lecture["id"]
    for name, code in (("county", 403), ("coordinator", 403), ("admin", 403),
                       ("village", 404), ("guilin_coordinator", 404)):
        status, body = await people[name].post(f"/api/teaching-sessions/{sid}/start")
        assert status == code, (name, body)
    for name, code in (("county", 403), ("admin", 403), ("village", 404)):
        status, body = await people[name].post(f"/api/teaching-sessions/{sid}/end")
        assert status == code, (name, body)
        status, body = await people[name].request(
            "PATCH", f"/api/teaching-sessions/{sid}", {"title": "x"})
        assert status == code, (name, body)
    status, body = await people["expert"].post(f"/api/teaching-sessions/{sid}/start")
    assert status == 200 and body["status"] == "live" and body["started_at"], body
    assert body["can"]["present"] is True
    # the clinicians of the invited sites are told, in their language; others are not
    async with db_of(server).read() as session:
        told = set((await session.execute(select(User.username).join(
            Notification, Notification.user_id == User.id).where(
            Notification.kind == "teaching.starting",
            Notification.resource_id == str(sid)))).scalars())
        titles = (await session.execute(select(Notification.title).where(
            Notification.kind == "teaching.starting"))).scalars().all()
    assert {"county", "township", "county_radiology"} <= told
    assert not told & {"expert", "village", "coordinator", "maoming_radiology"}
    assert all(t.startswith(("示教直播开始", "Teaching broadcast is live")) for t in titles)
    status, body = await people["expert"].post(f"/api/teaching-sessions/{sid}/start")
    assert status == 409 and body["error"]["code"] == "invalid_transition"
    status, body = await people["expert"].request(
        "PATCH", f"/api/teaching-sessions/{sid}", {"title": "late change"})
    assert status == 409 and body["error"]["code"] == "invalid_transition"
    status, body = await people["coordinator"].post(f"/api/teaching-sessions/{sid}/end")
    assert status == 200 and body["status"] == "ended" and body["ended_at"], body
    assert body["can"] == {"start": False, "end": False, "edit": False, "present": False,
                           "watch": False, "attendance": True}
    status, body = await people["expert"].post(f"/api/teaching-sessions/{sid}/end")
    assert status == 409 and body["error"]["code"] == "invalid_transition"
    await people["admin"].flush_audit()
    async with db_of(server).read() as session:
        actions = (await session.execute(select(AuditEntry.action).where(
            AuditEntry.resource_type == "teaching_session",
            AuditEntry.resource_id == str(sid)))).scalars().all()
    assert {"teaching_create", "teaching_start", "teaching_end"} <= set(actions)


async def test_calling_off_and_starting_too_early(people: dict[str, Api],
                                                  places: dict[str, int]) -> None:
    start, end = window(timedelta(hours=2))
    status, body = await schedule(people["expert"], people["expert"], [places["dianbai"]],
                                  start=start, end=end)
    assert status == 201, body
    assert body["can"]["start"] is False
    status, early = await people["expert"].post(f"/api/teaching-sessions/{body['id']}/start")
    assert status == 409 and early["error"]["code"] == "too_early"
    assert early["error"]["details"]["earliest"]
    status, ended = await people["expert"].post(f"/api/teaching-sessions/{body['id']}/end")
    assert status == 200 and ended["status"] == "ended" and ended["started_at"] is None


async def test_change_a_scheduled_session(lecture: dict[str, Any], people: dict[str, Api],
                                          places: dict[str, int]) -> None:
    sid = lecture["id"]
    start, end = window(timedelta(days=1), timedelta(minutes=45))
    status, body = await people["expert"].request("PATCH", f"/api/teaching-sessions/{sid}", {
        "title": "  New title ", "start": start, "end": end,
        "invited_institution_ids": [places["shangtang"]], "description": "", "record": False})
    assert status == 200, body
    assert body["title"] == "New title" and body["description"] is None
    assert body["record"] is False
    assert [i["id"] for i in body["invited_institutions"]] == [places["shalang"] * 0
                                                                + places["shangtang"]]
    assert datetime.fromisoformat(body["start"]) == datetime.fromisoformat(start)
    # Dianbai is no longer invited: its doctor loses sight of it, the village gains it
    status, _ = await people["county"].get(f"/api/teaching-sessions/{sid}")
    assert status == 404
    status, _ = await people["village"].get(f"/api/teaching-sessions/{sid}")
    assert status == 200
    for patch, code in (({"end": start}, "invalid_window"),
                        ({"invited_institution_ids": [places["guilin"]]},
                         "unknown_institution"),
                        ({"invited_institution_ids": []}, "validation_error"),
                        ({"presenter_id": 1}, "validation_error"),
                        ({"title": ""}, "validation_error")):
        status, err = await people["coordinator"].request(
            "PATCH", f"/api/teaching-sessions/{sid}", patch)
        assert status == 422 and err["error"]["code"] == code, (patch, err)


async def test_who_may_create_and_bad_input(people: dict[str, Api], places: dict[str, int],
                                            api: Api) -> None:
    ok = [places["dianbai"]]
    # a village doctor may organise; the presenter must be clinical and in reach
    status, body = await schedule(people["village"], people["expert"], ok)
    assert status == 201, body
    cases: list[tuple[Api, dict[str, Any], int, str]] = [
        (people["coordinator"], {"presenter_id": people["coordinator"].user["id"]}, 422,
         "presenter_not_clinical"),
        (people["coordinator"], {"presenter_id": people["guilin_doctor"].user["id"]}, 422,
         "unknown_presenter"),
        (people["coordinator"], {"presenter_id": 2_000_000_000}, 422, "unknown_presenter"),
        (people["coordinator"], {"invited_institution_ids": [places["guilin"]]}, 422,
         "unknown_institution"),
        (people["coordinator"], {"invited_institution_ids": [2_000_000_000]}, 422,
         "unknown_institution"),
        (people["coordinator"], {"invited_institution_ids": []}, 422, "validation_error"),
        (people["coordinator"], {"kind": "party"}, 422, "validation_error"),
        (people["coordinator"], {"title": " "}, 422, "validation_error"),
        (people["coordinator"], {"title": "x" * 201}, 422, "validation_error"),
        (people["coordinator"], {"start": "tomorrow"}, 422, "validation_error"),
        (people["coordinator"], {"start": "2026-12-01T09:00:00"}, 422, "validation_error"),
        (people["coordinator"], {"end": window(timedelta(minutes=-5))[0]}, 422,
         "invalid_window"),
        (people["coordinator"], {"start": window(timedelta(days=-2))[0],
                                 "end": window(timedelta(days=-2), timedelta(hours=1))[1]},
         422, "invalid_window"),
        (people["coordinator"], {"end": window(timedelta(minutes=5), timedelta(hours=13))[1]},
         422, "invalid_window"),
        (people["coordinator"], {"record": "yes"}, 422, "validation_error"),
        (people["coordinator"], {"presenter_id": "7"}, 422, "validation_error"),
        (people["coordinator"], {"surprise": 1}, 422, "validation_error"),
        (people["coordinator"], {"title": "a\u0000b"}, 422, "validation_error"),
    ]
    for client, change, code, error in cases:
        status, body = await schedule(client, people["expert"], ok, **change)
        assert (status, body["error"]["code"]) == (code, error), (change, body)
    # an admin may invite anywhere and choose any clinical presenter
    status, body = await schedule(people["admin"], people["guilin_doctor"],
                                  [places["guilin"], places["dianbai"]])
    assert status == 201, body
    status, body = await people["coordinator"].post("/api/teaching-sessions", data=b"{",
                                                    headers={"Content-Type":
                                                             "application/json"})
    assert status == 400 and body["error"]["code"] == "invalid_json"
    status, body = await people["coordinator"].post("/api/teaching-sessions", data=b"x",
                                                    headers={"Content-Type": "text/plain"})
    assert status == 415
    status, body = await api.post("/api/teaching-sessions", {})
    assert status == 401
    for path in ("/api/teaching-sessions/0", "/api/teaching-sessions/abc",
                 "/api/teaching-sessions/99999999", "/api/teaching-sessions/1%2F2",
                 "/api/teaching-sessions/99999999999/attendance"):
        status, body = await people["admin"].get(path)
        assert status == 404, (path, body)
    for query in ({"status": "over"}, {"from": "0.5"}, {"to": "yesterday"}):
        status, body = await people["admin"].get("/api/teaching-sessions", params=query)
        assert status == 422, (query, body)
    status, body = await people["admin"].get(
        "/api/teaching-sessions/1/attendance", params={"format": "xlsx"})
    assert status == 422


async def test_list_filters_and_order(people: dict[str, Api], places: dict[str, int],
                                      lecture: dict[str, Any]) -> None:
    status, rows = await people["coordinator"].get("/api/teaching-sessions")
    assert status == 200
    statuses = [r["status"] for r in rows]
    assert statuses == sorted(statuses, key=["live", "scheduled", "ended"].index)
    upcoming = [datetime.fromisoformat(r["start"]) for r in rows if r["status"] == "scheduled"]
    assert upcoming == sorted(upcoming)
    now = datetime.now(UTC)
    status, rows = await people["coordinator"].get("/api/teaching-sessions", params={
        "from": (now - timedelta(minutes=1)).isoformat(),
        "to": (now + timedelta(hours=3)).isoformat()})
    assert status == 200 and lecture["id"] in [r["id"] for r in rows]
    assert all(r["status"] != "ended" for r in rows)
    status, rows = await people["coordinator"].get("/api/teaching-sessions",
                                                   params={"status": "ended"})
    assert rows and {r["status"] for r in rows} == {"ended"}
    # the Guilin coordinator oversees none of the Guangdong sessions
    status, rows = await people["guilin_coordinator"].get("/api/teaching-sessions")
    assert status == 200 and rows == []


async def yesterdays(client: Api) -> dict[str, Any]:
    status, rows = await client.get("/api/teaching-sessions", params={"status": "ended"})
    assert status == 200, rows
    return next(r for r in rows if r["kind"] == "training")


async def test_demo_attendance_merged_csv_and_by_institution(
        people: dict[str, Api], places: dict[str, int], server: TestServer) -> None:
    session = await yesterdays(people["coordinator"])
    sid = session["id"]
    status, rows = await people["gdph_radiology"].get(f"/api/teaching-sessions/{sid}/attendance")
    assert status == 200, rows
    by_user = {r["display_name"]: r for r in rows}
    township = by_user[people["township"].user["display_name"]]
    # two stays, 6-20 and 24-55 minutes after the start: 45 minutes, first join to last leave
    assert township["minutes"] == 45
    joined = datetime.fromisoformat(township["joined_at"])
    assert datetime.fromisoformat(township["left_at"]) - joined == timedelta(minutes=49)
    assert len(rows) == 8 and people["gdph_radiology"].user["display_name"] not in by_user
    status, per_site = await people["coordinator"].get(
        f"/api/teaching-sessions/{sid}/attendance/by-institution")
    assert status == 200
    dianbai = next(r for r in per_site if r["institution_id"] == places["dianbai"])
    assert dianbai == {"institution_id": places["dianbai"],
                       "name": "Dianbai District People's Hospital", "person_times": 4,
                       "minutes": 58 + 54 + 35 + 60}
    assert sum(r["person_times"] for r in per_site) == 8
    status, csv = await people["admin"].get(f"/api/teaching-sessions/{sid}/attendance",
                                            params={"format": "csv"})
    assert status == 200 and csv.startswith(b"\xef\xbb\xbf")
    lines = csv.decode("utf-8-sig").split("\r\n")
    assert lines[0] == ("user_id,display_name,institution_id,institution_name,"
                        "institution_local_name,joined_at,left_at,minutes")
    assert len(lines) == 10 and lines[-1] == ""
    assert any("沙琅镇中心卫生院" in line and line.endswith(",45") for line in lines)
    # viewers and outsiders do not read the attendance
    for name, code in (("county", 403), ("village", 403), ("guilin_doctor", 404)):
        status, body = await people[name].get(f"/api/teaching-sessions/{sid}/attendance")
        assert status == code, (name, body)
    await people["admin"].flush_audit()
    async with db_of(server).read() as db:
        exports = (await db.execute(select(AuditEntry.user_id).where(
            AuditEntry.action == "teaching_attendance_export"))).scalars().all()
    assert exports == [people["admin"].user["id"]]


async def test_demo_questions(people: dict[str, Api], server: TestServer) -> None:
    sid = (await yesterdays(people["coordinator"]))["id"]
    status, questions = await people["county"].get(f"/api/teaching-sessions/{sid}/questions")
    assert status == 200 and len(questions) == 4
    assert [q["answered_at"] is not None for q in questions] == [True, True, True, False]
    assert questions[2]["text"].startswith("我们卫生站没有CT")
    assert questions[0]["institution_name"] == "Shalang Town Central Health Centre"
    ats = [q["at"] for q in questions]
    assert ats == sorted(ats)
    for name, code in (("guilin_doctor", 404), ("admin", 200)):
        status, _ = await people[name].get(f"/api/teaching-sessions/{sid}/questions")
        assert status == code
    # an overseer reads them through oversight: audited (a participant's read is not)
    await people["admin"].flush_audit()
    async with db_of(server).read() as db:
        reads = (await db.execute(select(AuditEntry.user_id, AuditEntry.detail).where(
            AuditEntry.action == "teaching_questions_read",
            AuditEntry.resource_id == str(sid)))).all()
    assert [(u, d) for u, d in reads] == [(user_id(people["admin"]), {"rows": 4})]


async def test_room_rules_and_attendance_rows(lecture: dict[str, Any], people: dict[str, Api],
                                              server: TestServer) -> None:
    rooms, db, sid = TeachingRooms(), db_of(server), lecture["id"]

    async def as_user(name: str) -> User:
        async with db.read() as session:
            user = await session.get(User, people[name].user["id"])
            assert user is not None
            return user

    expert, county, village = [await as_user(n) for n in ("expert", "county", "village")]
    async with db.write() as session:
        assert await rooms.admit(session, expert, str(sid)) is True
        assert await rooms.admit(session, county, str(sid)) is False
        assert await rooms.admit(session, county, str(sid)) is False  # second tab: one row
        await rooms.may_speak(session, county, str(sid))
        for object_id in (str(sid), f"0{sid}", "99999999", "x"):
            with pytest.raises(Forbidden):
                await rooms.admit(session, village, object_id)
        assert await rooms.still_open(session, [str(sid), "99999999", "01"]) == {str(sid)}
    async with db.write() as session:
        rows = (await session.execute(select(TeachingAttendance).where(
            TeachingAttendance.session_id == sid))).scalars().all()
        assert [(r.user_id, r.left_at) for r in rows] == [(county.id, None)]
        await rooms.left(session, county, str(sid))
        await rooms.admit(session, county, str(sid))  # a reconnect opens a new stay
        # place the stays in the past so the minutes mean something
        start = utcnow() - timedelta(minutes=30)
        await session.execute(update(TeachingAttendance).where(
            TeachingAttendance.session_id == sid, TeachingAttendance.left_at.is_not(None))
            .values(joined_at=start, left_at=start + timedelta(minutes=10)))
        await session.execute(update(TeachingAttendance).where(
            TeachingAttendance.session_id == sid, TeachingAttendance.left_at.is_(None))
            .values(joined_at=start + timedelta(minutes=20)))
    # still scheduled: waiting in the room before the start is not attendance
    status, rows = await people["expert"].get(f"/api/teaching-sessions/{sid}/attendance")
    assert status == 200 and rows == []
    status, _ = await people["expert"].post(f"/api/teaching-sessions/{sid}/start")
    assert status == 200
    status, live = await people["county"].get(f"/api/teaching-sessions/{sid}")
    assert live["viewers_now"] == 1
    # the broadcast began 25 minutes ago: of the first stay (-30..-20) only -25..-20 counts,
    # the open one (-10..now) wholly
    began = start + timedelta(minutes=5)
    async with db.write() as session:
        await session.execute(update(TeachingSession).where(TeachingSession.id == sid)
                              .values(started_at=began))
    status, rows = await people["expert"].get(f"/api/teaching-sessions/{sid}/attendance")
    assert status == 200 and len(rows) == 1
    assert rows[0]["left_at"] is None and rows[0]["minutes"] == 15
    assert datetime.fromisoformat(rows[0]["joined_at"]) == began
    status, per_site = await people["coordinator"].get(
        f"/api/teaching-sessions/{sid}/attendance/by-institution")
    assert status == 200 and [(r["person_times"], r["minutes"]) for r in per_site] == [(1, 15)]
    status, ended = await people["expert"].post(f"/api/teaching-sessions/{sid}/end")
    assert ended["viewers_now"] is None
    assert status == 200
    # the open stay was closed at the session's end
    status, rows = await people["expert"].get(f"/api/teaching-sessions/{sid}/attendance")
    assert rows[0]["left_at"] == ended["ended_at"]
    async with db.write() as session:
        with pytest.raises(RoomClosed):
            await rooms.admit(session, county, str(sid))
        with pytest.raises(RoomClosed):
            await rooms.may_speak(session, county, str(sid))
        assert await rooms.still_open(session, [str(sid)]) == set()


async def test_a_called_off_session_has_no_attendees(
        lecture: dict[str, Any], people: dict[str, Api], server: TestServer) -> None:
    """Viewers who waited in the room of a session that was then called off (ended without
    starting) are not reported, whichever way the attendance is read."""
    rooms, db, sid = TeachingRooms(), db_of(server), lecture["id"]
    async with db.write() as session:
        for name in ("county", "township"):
            user = await session.get(User, user_id(people[name]))
            assert user is not None
            assert await rooms.admit(session, user, str(sid)) is False
        # they opened the page an hour early
        await session.execute(update(TeachingAttendance).where(
            TeachingAttendance.session_id == sid)
            .values(joined_at=utcnow() - timedelta(hours=1)))
    status, ended = await people["coordinator"].post(f"/api/teaching-sessions/{sid}/end")
    assert status == 200 and ended["started_at"] is None and ended["status"] == "ended"
    async with db.read() as session:
        rows = (await session.execute(select(TeachingAttendance).where(
            TeachingAttendance.session_id == sid))).scalars().all()
    assert len(rows) == 2 and all(r.left_at is not None for r in rows)  # closed at the end
    status, listed = await people["coordinator"].get(f"/api/teaching-sessions/{sid}/attendance")
    assert status == 200 and listed == []
    status, per_site = await people["coordinator"].get(
        f"/api/teaching-sessions/{sid}/attendance/by-institution")
    assert status == 200 and per_site == []
    status, csv = await people["coordinator"].get(f"/api/teaching-sessions/{sid}/attendance",
                                                  params={"format": "csv"})
    assert status == 200
    assert csv.decode("utf-8-sig").split("\r\n")[1:] == [""]


async def test_media_rules_and_recording_rows(lecture: dict[str, Any], people: dict[str, Api],
                                              server: TestServer) -> None:
    db, sid = db_of(server), lecture["id"]
    data_dir = server.app[keys.SETTINGS].data_dir
    media = TeachingMedia(data_dir, lambda rid, path: (rid, path))
    async with db.read() as session:
        expert = await session.get(User, people["expert"].user["id"])
        county = await session.get(User, people["county"].user["id"])
    assert expert is not None and county is not None
    async with db.write() as session:
        with pytest.raises(Conflict) as not_live:
            await media.may_publish(session, expert, str(sid))
        assert not_live.value.code == "not_live"
        with pytest.raises(Forbidden):
            await media.may_publish(session, county, str(sid))
    await people["expert"].post(f"/api/teaching-sessions/{sid}/start")
    async with db.write() as session:
        assert await media.may_publish(session, expert, str(sid)) is True
        rid, path = await media.recording_started(session, str(sid), "mkv", utcnow())
    assert path.parent.is_dir() and path.suffix == ".mkv"
    assert path.is_relative_to(data_dir / "recordings" / "teaching" / str(sid))
    status, body = await people["county"].get(f"/api/teaching-sessions/{sid}")
    assert body["recordings"][0]["status"] == "recording" and body["recordings"][0]["url"] is None
    async with db.write() as session:
        await media.recording_finished(session, rid, 12.5, 4096, utcnow(), ok=False)
    status, body = await people["county"].get(f"/api/teaching-sessions/{sid}")
    assert body["recordings"][0] | {"started_at": None} == {
        "id": rid, "url": None, "duration_s": 12.5, "bytes": 4096, "started_at": None,
        "container": "mkv", "status": "failed"}
    await people["expert"].post(f"/api/teaching-sessions/{sid}/end")
    async with db.write() as session:
        with pytest.raises(RoomClosed):
            await media.may_publish(session, expert, str(sid))


async def test_recording_download_range_and_links(people: dict[str, Api], api: Api,
                                                  server: TestServer) -> None:
    session = await yesterdays(people["county"])
    recording = session["recordings"][0]
    assert recording["status"] == "complete" and recording["container"] == "webm"
    url = recording["url"]
    async with api.http.get(api.url(url)) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "video/webm"
        assert resp.headers["Accept-Ranges"] == "bytes"
        whole = await resp.read()
    assert len(whole) == recording["bytes"] and whole[:4] == b"\x1a\x45\xdf\xa3"
    async with api.http.get(api.url(url), headers={"Range": "bytes=100-199"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
        assert await resp.read() == whole[100:200]
    for bad in (f"bytes={len(whole) + 10}-", "bytes=500-100"):
        async with api.http.get(api.url(url), headers={"Range": bad}) as resp:
            assert resp.status == 416, bad
    # the link is the county doctor's: altered, another user's or another recording's fails
    forged = [url.replace("sig=", "sig=0")[:-1], url.replace(
        f"uid={people['county'].user['id']}", f"uid={people['village'].user['id']}"),
        url.replace(f"/{recording['id']}?", f"/{recording['id'] + 1}?")]
    for link in forged:
        async with api.http.get(api.url(link)) as resp:
            assert resp.status in (403, 404), link
            if resp.status == 403:
                assert (await resp.json())["error"]["code"] == "invalid_link"
    async with api.http.get(api.url(f"/api/teaching-recordings/{recording['id']}")) as resp:
        assert resp.status == 422
    secret = server.app[keys.SETTINGS].secret_key
    past = datetime.now(UTC) - recordings.LINK_TTL - timedelta(seconds=5)
    expired = recordings.signed_url(secret, recording["id"], people["county"].user["id"], past)
    async with api.http.get(api.url(expired)) as resp:
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "link_expired"
    # a well-signed link for someone who may not watch (other alliance) is refused
    outsider = recordings.signed_url(secret, recording["id"],
                                     people["guilin_doctor"].user["id"], datetime.now(UTC))
    async with api.http.get(api.url(outsider)) as resp:
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
    # an overseer sees the recording but gets no link (not a participant)
    admin_view = await yesterdays(people["admin"])
    assert admin_view["recordings"][0]["url"] is None
    await people["admin"].flush_audit()
    async with db_of(server).read() as db:
        downloads = (await db.execute(select(AuditEntry.user_id).where(
            AuditEntry.action == "teaching_recording_download"))).scalars().all()
    assert people["county"].user["id"] in downloads and len(downloads) <= 3


async def test_usage_is_for_admins(people: dict[str, Api]) -> None:
    status, body = await people["admin"].get("/api/teaching-recordings/usage")
    assert status == 200, body
    assert body["recordings"] == 1 and body["by_status"] == {"complete": 1}
    assert body["disk_bytes"] == body["bytes"] > 0 and body["free_bytes"] > 0
    status, body = await people["coordinator"].get("/api/teaching-recordings/usage")
    assert status == 403


async def test_restart_recovery_probes_left_over_files(people: dict[str, Api],
                                                       server: TestServer) -> None:
    db = db_of(server)
    data_dir = server.app[keys.SETTINGS].data_dir
    sid = (await yesterdays(people["coordinator"]))["id"]
    async with db.write() as session:
        good = (await session.execute(select(TeachingRecording))).scalars().one()
        truncated_path = data_dir / good.path
        whole = truncated_path.read_bytes()
        # a file cut short as a crash would leave it, one with garbage, one missing
        cut = truncated_path.with_name("cut.webm")
        cut.write_bytes(whole[: len(whole) * 2 // 3])
        junk = truncated_path.with_name("junk.webm")
        junk.write_bytes(b"not a video" * 100)
        rows = [TeachingRecording(session_id=sid, container="webm",
                                  path=p.relative_to(data_dir).as_posix(),
                                  started_at=utcnow() - timedelta(days=1), status="recording")
                for p in (cut, junk, truncated_path.with_name("gone.webm"))]
        session.add_all(rows)
        await session.flush()
        ids = [r.id for r in rows]
    assert await recordings.recover(db, data_dir) == 3
    async with db.read() as session:
        found = {r.id: r for r in (await session.execute(select(TeachingRecording).where(
            TeachingRecording.id.in_(ids)))).scalars()}
    cut_row, junk_row, gone_row = (found[i] for i in ids)
    assert cut_row.status == "complete" and 3 < (cut_row.duration_s or 0) < 10
    assert cut_row.bytes == len(whole) * 2 // 3
    assert (junk_row.status, junk_row.bytes) == ("failed", 1100)
    assert (gone_row.status, gone_row.bytes) == ("failed", 0)
    assert await recordings.recover(db, data_dir) == 0  # nothing left to repair
