"""Teaching sessions in motion: the real /rtc socket admitting to ``teaching:<id>`` rooms and
keeping questions, and the sweeps (reminders, abandoned sessions, orphaned recordings)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestServer
from sqlalchemy import select

from tests.conftest import Api
from tests.server import test_teaching as base
from tests.server.test_teaching import db_of, schedule
from tests.support.rtc_client import RtcClient
from yilian.server.clinic.teaching import sweeps
from yilian.server.clinic.teaching.models import TeachingAttendance, TeachingSession
from yilian.server.core.db import utcnow
from yilian.server.core.models import Notification, User

# The logged-in demo users, institutions and a scheduled lecture of the API tests.
people, places, lecture = base.people, base.places, base.lecture


async def test_socket_join_host_refusal_and_questions(
        server: TestServer, lecture: dict[str, Any], people: dict[str, Api]) -> None:
    sid, room = lecture["id"], f"teaching:{lecture['id']}"
    clients: list[RtcClient] = []

    async def connect(name: str) -> RtcClient:
        client = RtcClient(str(server.make_url("/")), people[name].token or "", label=name)
        clients.append(client)
        await client.connect()
        return client

    try:
        presenter = await connect("expert")
        ack = await presenter.join(room)
        assert ack["ok"] and ack["host"] is True, ack
        await presenter.leave()
        outsider = await connect("village")
        ack = await outsider.join(room)
        assert ack["ok"] is False and ack["error"]["code"] == "forbidden", ack
        viewer = await connect("county")
        ack = await viewer.join(room)
        assert ack["ok"] and not ack.get("host"), ack
        ack = await viewer.call("chat", {"room": room, "text": "Which leads show it best?"})
        assert ack["ok"], ack
        status, questions = await people["expert"].get(f"/api/teaching-sessions/{sid}/questions")
        assert status == 200 and [q["text"] for q in questions] == ["Which leads show it best?"]
        assert questions[0]["user_id"] == people["county"].user["id"]
        assert questions[0]["answered_at"] is None
        async with db_of(server).read() as session:
            stays = (await session.execute(select(TeachingAttendance.user_id).where(
                TeachingAttendance.session_id == sid))).scalars().all()
        assert stays == [people["county"].user["id"]]  # the presenter is not an attendee
        # leaving on purpose closes the stay (the gate tells the rules its last peer left)
        await viewer.leave()
        for _ in range(100):
            async with db_of(server).read() as session:
                left = (await session.execute(select(TeachingAttendance.left_at).where(
                    TeachingAttendance.session_id == sid))).scalars().all()
            if left and all(left):
                break
            await asyncio.sleep(0.05)
        assert len(left) == 1 and left[0] is not None
        ack = await viewer.join(room)  # back again: a second stay
        assert ack["ok"], ack
        async with db_of(server).read() as session:
            left = (await session.execute(select(TeachingAttendance.left_at).where(
                TeachingAttendance.session_id == sid).order_by(TeachingAttendance.id))).scalars().all()
        assert len(left) == 2 and left[0] is not None and left[1] is None
        # Still scheduled: waiting in the room before the start is not training time.
        status, credited = await people["expert"].get(f"/api/teaching-sessions/{sid}/attendance")
        assert status == 200 and credited == []
        status, _ = await people["expert"].post(f"/api/teaching-sessions/{sid}/end")
        assert status == 200
        late = await connect("township")
        ack = await late.join(room)
        assert ack["ok"] is False and ack["error"]["code"] == "room_closed", ack
    finally:
        for client in clients:
            await client.close()


async def test_sweeps_remind_end_abandoned_and_are_idempotent(
        server: TestServer, people: dict[str, Api], places: dict[str, int]) -> None:
    db = db_of(server)
    status, soon = await schedule(people["coordinator"], people["expert"], [places["shalang"]])
    assert status == 201
    status, left_live = await schedule(people["coordinator"], people["expert"],
                                       [places["dianbai"]])
    status, _ = await people["expert"].post(f"/api/teaching-sessions/{left_live['id']}/start")
    assert status == 200
    status, never = await schedule(people["coordinator"], people["expert"], [places["dianbai"]])
    now = utcnow()
    # reminders: the session starts in 5 minutes, within the 15-minute notice
    assert await sweeps.remind(db, now) >= 1
    assert await sweeps.remind(db, now) == 0
    async with db.read() as session:
        reminded = (await session.execute(select(User.username).join(
            Notification, Notification.user_id == User.id).where(
            Notification.kind == "teaching.reminder",
            Notification.resource_id == str(soon["id"])))).scalars().all()
    assert "township" in reminded and "county" not in reminded
    # hours after their end: the live one ends at its scheduled end, the other now
    later = now + timedelta(hours=5)
    assert await sweeps.end_abandoned(db, now) == 0
    assert await sweeps.end_abandoned(db, later) >= 2
    async with db.read() as session:
        rows = {t.id: t for t in (await session.execute(select(TeachingSession).where(
            TeachingSession.id.in_([left_live["id"], never["id"]])))).scalars()}
    live_row, never_row = rows[left_live["id"]], rows[never["id"]]
    assert live_row.status == never_row.status == "ended"
    assert live_row.ended_at == live_row.end
    assert never_row.started_at is None and never_row.ended_at == later
    assert await sweeps.end_abandoned(db, later) == 0
