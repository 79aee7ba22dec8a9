"""Teaching broadcasts through ``/rtc``: a real app with teaching sessions, the presenter and
viewers as socket.io clients with aiortc peers. One server and one live session per module."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from tests.conftest import PG_URL, Api, _pg_admin, _pg_url, base_settings
from tests.signaling.conftest import until
from tests.support.broadcast_peer import BroadcastPresenter, TeachingClient
from yilian.server.app import create_app
from yilian.server.clinic.teaching.media import TeachingMedia
from yilian.server.clinic.teaching.models import TeachingAttendance, TeachingRecording
from yilian.server.core import keys
from yilian.server.core.db import Database
from yilian.server.core.settings import Settings
from yilian.signaling import rooms as rooms_module
from yilian.signaling.server import serve_broadcasts
from yilian.signaling.sfu.ports import RecordingTarget

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class World:
    server: TestServer
    users: dict[str, Api]
    session_id: int
    room: str
    presenter: TeachingClient
    clients: list[TeachingClient]

    async def client(self, user: str) -> TeachingClient:
        client = TeachingClient(str(self.server.make_url("/")), self.users[user].token or "",
                                label=user)
        self.clients.append(client)
        await client.connect()
        return client


async def schedule(users: dict[str, Api], *, start: bool = True, record: bool = False) -> int:
    """A lecture by the expert for the village and township clinics."""
    expert = users["expert"]
    now = datetime.now(UTC)
    status, body = await expert.post("/api/teaching-sessions", {
        "title": "ECG reading", "kind": "lecture",
        "start": (now + timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
        "presenter_id": expert.user["id"],
        "invited_institution_ids": [users["village"].user["institution_id"],
                                    users["township"].user["institution_id"]],
        "record": record,
    })
    assert status == 201, body
    if start:
        status, started = await expert.post(f"/api/teaching-sessions/{body['id']}/start")
        assert status == 200, started
    return int(body["id"])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(template: tuple[Path, str],
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tpl_dir, tpl_name = template
    data_dir = tmp_path_factory.mktemp("sfu-rtc") / "data"
    shutil.copytree(tpl_dir, data_dir)
    name = f"yilian_t_{uuid.uuid4().hex[:12]}"
    if PG_URL:
        await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{tpl_name}"')
    settings = base_settings(data_dir, _pg_url(name) if PG_URL else "")
    app = create_app(settings)
    serve_broadcasts(app, TeachingMedia(settings.data_dir, RecordingTarget))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    clients: list[TeachingClient] = []
    try:
        async with ClientSession() as http:
            anonymous = Api(server, http)
            names = ("expert", "village", "township", "county", "guilin_doctor")
            logged = await asyncio.gather(*(anonymous.login(n) for n in names))
            users = dict(zip(names, logged, strict=True))
            session_id = await schedule(users)
            room = f"teaching:{session_id}"
            world = World(server, users, session_id, room, None, clients)  # type: ignore[arg-type]
            presenter = await world.client("expert")
            ack = await presenter.join(room)
            assert ack["ok"] and ack["host"] is True and ack["live"] is False, ack
            world.presenter = presenter
            yield world
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        await server.close()
        if PG_URL:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def published(world: World) -> None:
    """The presenter's media flows (published once for the module)."""
    if world.presenter.presenter is None:
        ack = await world.presenter.publish()
        assert ack == {"ok": True}, ack
    await until(lambda: any(e.get("live") for e in world.presenter.seen("broadcast")), 10)


async def test_viewers_watch_the_presenter_and_the_presenter_counts_them(world: World) -> None:
    village = await world.client("village")
    ack = await village.join(world.room)
    assert ack["ok"] and ack["host"] is False
    assert await village.call("subscribe", {"room": world.room}) == {
        "ok": False, "error": {"code": "not_live",
                               "message": f"{world.room} is not broadcasting yet"}}
    await published(world)
    await until(lambda: any(e == {"room": world.room, "live": True}
                            for e in village.seen("broadcast")), 5)
    township = await world.client("township")
    joined = await township.join(world.room)
    assert joined["live"] is True
    for viewer in (village, township):
        assert (await viewer.watch()) == {"ok": True, "layer": "high"}
    for viewer in (village, township):
        assert viewer.viewer is not None
        await asyncio.wait_for(viewer.viewer.first_frame.wait(), 5)
        assert viewer.viewer.last_size == (640, 480)
    await until(lambda: any(v.get("count") == 2 for v in world.presenter.seen("viewers")), 5)
    assert world.presenter.seen("viewers")[-1] == {"room": world.room, "count": 2,
                                                   "high": 2, "low": 0}
    # A layer choice, and the viewer's own picture changes.
    assert await village.call("layer", {"room": world.room, "layer": "low"}) == {
        "ok": True, "layer": "low"}
    assert village.viewer is not None
    await until(lambda: village.viewer is not None and village.viewer.last_size == (320, 240), 5)
    assert await village.call("unsubscribe", {"room": world.room}) == {"ok": True}
    await until(lambda: world.presenter.seen("viewers")[-1]["count"] == 1, 5)
    assert (await village.call("leave", {"room": world.room}))["ok"]
    assert (await township.call("leave", {"room": world.room}))["ok"]
    # Leaving closes the attendance row (RoomRules.left).
    status, rows = await world.users["expert"].get(
        f"/api/teaching-sessions/{world.session_id}/attendance")
    assert status == 200, rows
    mine = [r for r in rows if r["user_id"] == world.users["village"].user["id"]]
    assert len(mine) == 1 and mine[0]["left_at"] is not None, rows


async def test_questions_carry_ids_and_the_presenter_marks_them_answered(world: World) -> None:
    county = await world.client("township")
    assert (await county.join(world.room))["ok"]
    ack = await county.call("chat", {"room": world.room, "text": "What about QT prolongation?"})
    assert ack["ok"] and isinstance(ack["id"], int)
    await until(lambda: any(c.get("id") == ack["id"] for c in world.presenter.seen("chat")), 5)
    refused = await county.call("answered", {"room": world.room, "id": ack["id"]})
    assert refused["error"]["code"] == "forbidden"
    assert await world.presenter.call("answered", {"room": world.room, "id": ack["id"]}) == {
        "ok": True}
    await until(lambda: bool(county.seen("answered")), 5)
    event = county.seen("answered")[0]
    assert event["id"] == ack["id"] and event["by"] == world.users["expert"].user["id"]
    status, questions = await world.users["expert"].get(
        f"/api/teaching-sessions/{world.session_id}/questions")
    assert status == 200, questions
    assert [q["answered_at"] is not None for q in questions if q["id"] == ack["id"]] == [True]
    unknown = await world.presenter.call("answered", {"room": world.room, "id": 999_999})
    assert unknown["error"]["code"] == "not_found"
    assert (await county.call("leave", {"room": world.room}))["ok"]


async def test_only_the_presenter_publishes_and_bad_input_gets_error_acks(world: World) -> None:
    await published(world)
    village = await world.client("village")
    assert (await village.join(world.room))["ok"]
    offer = await BroadcastPresenter(audio=False).offer()
    sdp = {"type": "offer", "sdp": offer.sdp}
    refused = await village.call("signal", {"to": "sfu", "room": world.room, "description": sdp})
    assert refused["error"]["code"] == "forbidden", refused
    outsider = await world.client("guilin_doctor")
    assert (await outsider.join(world.room))["error"]["code"] == "forbidden"
    cases: list[tuple[str, Any, str]] = [
        ("subscribe", {"room": world.room, "layer": "best"}, "invalid_payload"),
        ("subscribe", {"room": "teaching:x"}, "invalid_payload"),
        ("subscribe", "teaching", "invalid_payload"),
        ("subscribe", {"room": "teaching:999999"}, "not_in_room"),
        ("subscribe", {"room": "consultation:1"}, "not_in_room"),
        ("layer", {"room": world.room}, "invalid_payload"),
        ("layer", {"room": world.room, "layer": "low"}, "not_waiting"),
        ("unsubscribe", {"room": world.room}, "unknown_peer"),
        ("unsubscribe", [], "invalid_payload"),
        ("answered", {"room": world.room, "id": "1"}, "invalid_payload"),
        ("answered", {"room": world.room, "id": True}, "invalid_payload"),
        ("answered", {"room": world.room}, "invalid_payload"),
        ("signal", {"to": "sfu", "room": world.room,
                    "description": {"type": "answer", "sdp": "v=0\r\n"}}, "not_waiting"),
        ("signal", {"to": "sfu", "room": world.room,
                    "description": {"type": "pranswer", "sdp": "v=0\r\n"}}, "invalid_payload"),
        ("signal", {"to": "sfu", "room": world.room,
                    "candidate": {"candidate": "candidate:nonsense"}}, "not_waiting"),
        ("signal", {"to": "sfu", "room": 7, "candidate": None}, "invalid_payload"),
        ("signal", {"to": "sfu", "room": "teaching:999999", "candidate": None}, "not_in_room"),
    ]
    for event, data, code in cases:
        ack = await village.call(event, data)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, data, ack)
    # The presenter's garbage: an SDP that is not one, a candidate that is not one.
    bad = await world.presenter.call("signal", {"to": "sfu", "room": world.room, "description": {
        "type": "offer", "sdp": "v=0\r\nm=video 9 RTP/AVP 0\r\n"}})
    assert bad["error"]["code"] == "invalid_payload", bad
    # ...which must not have cost the broadcast (a rejected offer keeps the old media).
    assert (await village.watch())["ok"]
    assert village.viewer is not None
    await asyncio.wait_for(village.viewer.first_frame.wait(), 5)
    bad = await world.presenter.call("signal", {"to": "sfu", "room": world.room,
                                                "candidate": {"candidate": "candidate:x"}})
    assert bad["error"]["code"] == "invalid_payload", bad
    assert (await village.call("leave", {"room": world.room}))["ok"]


async def test_signals_to_sfu_without_a_relay_or_outside_teaching(world: World) -> None:
    # Consultation rooms have no relay.
    expert = world.users["expert"]
    status, rows = await expert.get("/api/consultations", params={"status": "in_progress"})
    assert status == 200 and rows
    client = await world.client("expert")
    room = f"consultation:{rows[0]['id']}"
    assert (await client.join(room))["ok"]
    ack = await client.call("signal", {"to": "sfu", "room": room, "candidate": None})
    assert ack["error"]["code"] == "not_available"
    ack = await client.call("subscribe", {"room": room})
    assert ack["error"]["code"] == "not_available"


def listen(client: TeachingClient, event: str) -> None:
    """Record ``event`` too (the support client records the broadcast's usual ones)."""
    client.sio.on(event, client._recorder(event), namespace="/rtc")


async def test_relay_events_need_an_admitted_peer_who_may_still_watch(world: World) -> None:
    """A viewer waiting in the lobby cannot reach the relay, and a viewer whose institution
    was dropped from the invitations cannot subscribe any more, though already in the room."""
    session_id = await schedule(world.users)
    room = f"teaching:{session_id}"
    presenter = await world.client("expert")
    assert (await presenter.join(room))["host"] is True
    assert (await presenter.publish()) == {"ok": True}
    await until(lambda: {"room": room, "live": True} in presenter.seen("broadcast"), 10)
    assert (await presenter.call("lobby", {"room": room, "enabled": True}))["ok"]
    waiting = await world.client("township")
    listen(waiting, "admitted")
    assert (await waiting.join(room))["waiting"] is True
    for event, data in [("subscribe", {"room": room}),
                        ("layer", {"room": room, "layer": "low"}),
                        ("signal", {"to": "sfu", "room": room, "candidate": None})]:
        ack = await waiting.call(event, data)
        assert ack["ok"] is False and ack["error"]["code"] == "not_in_room", (event, ack)
    assert (await presenter.call("lobby", {"room": room, "enabled": False}))["ok"]
    await until(lambda: bool(waiting.seen("admitted")), 5)
    assert (await waiting.watch())["ok"]

    assert (await presenter.call("leave", {"room": room}))["ok"]


async def test_a_viewer_no_longer_invited_cannot_subscribe(world: World) -> None:
    """Invitations change before the session goes live while a viewer sits in its room:
    joining checked them once, ``subscribe`` checks them again."""
    session_id = await schedule(world.users, start=False)
    room = f"teaching:{session_id}"
    village = await world.client("village")
    assert (await village.join(room))["ok"]
    expert = world.users["expert"]
    status, body = await expert.request("PATCH", f"/api/teaching-sessions/{session_id}", {
        "invited_institution_ids": [world.users["township"].user["institution_id"]]})
    assert status == 200, body
    status, body = await expert.post(f"/api/teaching-sessions/{session_id}/start")
    assert status == 200, body
    presenter = await world.client("expert")
    assert (await presenter.join(room))["host"] is True
    assert (await presenter.publish()) == {"ok": True}
    await until(lambda: {"room": room, "live": True} in presenter.seen("broadcast"), 10)
    ack = await village.call("subscribe", {"room": room})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden", ack
    township = await world.client("township")
    assert (await township.join(room))["ok"]
    assert (await township.watch())["ok"]
    assert (await presenter.call("leave", {"room": room}))["ok"]


async def test_a_second_presenter_device_supersedes_the_first(world: World) -> None:
    session_id = await schedule(world.users)
    room = f"teaching:{session_id}"
    first = await world.client("expert")
    second = await world.client("expert")
    for client in (first, second):
        listen(client, "superseded")
    assert (await first.join(room))["host"] is True
    assert (await second.join(room))["host"] is True
    assert (await first.publish()) == {"ok": True}
    await until(lambda: {"room": room, "live": True} in first.seen("broadcast"), 10)
    assert first.seen("superseded") == []
    live = {"room": room, "live": True}
    # the takeover stops the first device's media (live false), then the second's goes live
    await until(lambda: live in second.seen("broadcast"), 10)
    went_live = second.seen("broadcast").count(live)
    assert (await second.publish()) == {"ok": True}
    await until(lambda: first.seen("superseded") == [{"room": room}], 5)
    assert second.seen("superseded") == []
    viewer = await world.client("village")
    assert (await viewer.join(room))["ok"]
    await until(lambda: second.seen("broadcast").count(live) > went_live, 10)
    ack = await viewer.watch()
    assert ack["ok"], ack
    assert viewer.viewer is not None
    await asyncio.wait_for(viewer.viewer.first_frame.wait(), 5)
    for client in (first, second):
        assert (await client.call("leave", {"room": room}))["ok"]


async def test_seats_keep_the_presenter_in_and_a_refused_join_closes_its_stay(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Capacity binds viewers only (the presenter's seat is kept), one user holds at most
    ``MAX_PEERS_PER_USER`` peers, and a join refused after admission leaves no stay open."""
    session_id = await schedule(world.users)
    room = f"teaching:{session_id}"
    monkeypatch.setattr(rooms_module, "TEACHING_CAPACITY", 3)  # two viewers and the presenter
    village = [await world.client("village") for _ in range(rooms_module.MAX_PEERS_PER_USER + 1)]
    for client in village[:2]:
        assert (await client.join(room))["ok"]
    township = await world.client("township")
    full = await township.join(room)
    assert full["ok"] is False and full["error"]["code"] == "room_full", full
    presenter = await world.client("expert")
    assert (await presenter.join(room))["host"] is True  # full, but the presenter's seat
    # Attendance: the refused township doctor has no open stay; the village doctor has one.
    database = world.server.app[keys.DATABASE]
    async with database.read() as session:
        rows = (await session.execute(select(TeachingAttendance).where(
            TeachingAttendance.session_id == session_id))).scalars().all()
    by_user = {(r.user_id, r.left_at is None) for r in rows}
    assert (world.users["township"].user["id"], True) not in by_user, by_user
    assert (world.users["village"].user["id"], True) in by_user, by_user

    monkeypatch.setattr(rooms_module, "TEACHING_CAPACITY", 1000)
    assert (await village[2].join(room))["ok"]
    tabs = await village[3].join(room)
    assert tabs["ok"] is False and tabs["error"]["code"] == "too_many_tabs", tabs
    for client in [*village[:3], presenter]:
        assert (await client.call("leave", {"room": room}))["ok"]


async def test_relay_events_are_rate_limited_per_user(world: World) -> None:
    """Each subscribe builds a peer connection: 5 at once, then one a second; signals to
    ``sfu`` (ICE candidates come in bursts) 40 at once. Refused before any lookup."""
    county = await world.client("county")
    # Sent at once, so the buckets hardly refill while they are answered (one a second).
    subscribes = await asyncio.gather(*(county.call("subscribe", {"room": world.room})
                                        for _ in range(8)))
    codes = sorted(ack["error"]["code"] for ack in subscribes)
    assert codes.count("not_in_room") in (5, 6) and "rate_limited" in codes, codes
    signals = await asyncio.gather(*(county.call("signal", {
        "to": "sfu", "room": world.room, "candidate": None}) for _ in range(60)))
    codes = sorted(ack["error"]["code"] for ack in signals)
    assert 40 <= codes.count("not_in_room") < 60 and "rate_limited" in codes, codes
    layers = await asyncio.gather(*(county.call("layer", {"room": world.room, "layer": "low"})
                                    for _ in range(5)))
    limited = [a for a in layers if a["error"]["code"] == "rate_limited"]
    assert limited and "allowed in" in limited[0]["error"]["message"], layers


async def test_a_recorded_session_leaves_a_complete_recording(world: World) -> None:
    session_id = await schedule(world.users, record=True)
    room = f"teaching:{session_id}"
    presenter = await world.client("expert")
    assert (await presenter.join(room))["host"] is True
    assert (await presenter.publish()) == {"ok": True}
    await until(lambda: {"room": room, "live": True} in presenter.seen("broadcast"), 10)
    await asyncio.sleep(2.5)
    # Leaving ends the presenter's media: the file is closed and its row completed.
    assert (await presenter.call("leave", {"room": room}))["ok"]
    expert = world.users["expert"]

    async def recordings() -> list[dict[str, Any]]:
        status, body = await expert.get(f"/api/teaching-sessions/{session_id}")
        assert status == 200, body
        return list(body["recordings"])

    for _ in range(100):
        rows = await recordings()
        if rows and rows[0]["status"] != "recording":
            break
        await asyncio.sleep(0.1)
    assert len(rows) == 1 and rows[0]["status"] == "complete", rows
    assert rows[0]["container"] == "webm" and rows[0]["duration_s"] >= 1.5, rows
    assert rows[0]["bytes"] > 0


async def test_ending_the_session_closes_the_room_and_the_broadcast(world: World) -> None:
    await published(world)
    viewer = await world.client("village")
    assert (await viewer.join(world.room))["ok"]
    assert (await viewer.watch())["ok"]
    status, body = await world.users["expert"].post(
        f"/api/teaching-sessions/{world.session_id}/end")
    assert status == 200, body
    rtc = world.server.app
    from yilian.signaling import keys as rtc_keys

    relay = rtc[rtc_keys.RTC].relay
    assert relay is not None
    # The periodic re-check (5 s) or the next event finds the session ended.
    ack = await viewer.call("chat", {"room": world.room, "text": "still there?"})
    assert ack["error"]["code"] == "room_closed"
    await until(lambda: world.room not in relay.broadcasts, 10)
    await until(lambda: bool(viewer.seen("room-closed")), 10)
    status, rows = await world.users["expert"].get(
        f"/api/teaching-sessions/{world.session_id}/attendance")
    assert status == 200, rows
    assert rows and all(r["left_at"] is not None for r in rows), rows


async def test_stopping_the_server_ends_the_broadcast_and_completes_its_recording(
        settings: Settings) -> None:
    app = create_app(settings)
    serve_broadcasts(app, TeachingMedia(settings.data_dir, RecordingTarget))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    presenter: TeachingClient | None = None
    session_id = 0
    try:
        async with ClientSession() as http:
            anonymous = Api(server, http)
            names = ("expert", "village", "township")
            users = dict(zip(names, await asyncio.gather(*(anonymous.login(n) for n in names)),
                             strict=True))
            session_id = await schedule(users, record=True)
            room = f"teaching:{session_id}"
            presenter = TeachingClient(str(server.make_url("/")), users["expert"].token or "")
            await presenter.connect()
            assert (await presenter.join(room))["host"] is True
            assert (await presenter.publish()) == {"ok": True}
            await until(lambda: {"room": room, "live": True} in presenter.seen("broadcast"), 10)
            await asyncio.sleep(2)
    finally:
        await server.close()  # the presenter is still publishing
        if presenter is not None:
            await presenter.close()
    db = Database(settings.resolved_database_url)
    try:
        async with db.read() as session:
            rows = (await session.execute(select(TeachingRecording).where(
                TeachingRecording.session_id == session_id))).scalars().all()
    finally:
        await db.close()
    assert [r.status for r in rows] == ["complete"]
    assert rows[0].duration_s is not None and rows[0].duration_s >= 1.0
