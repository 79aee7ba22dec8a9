"""The ``/notify`` namespace on one process: who may connect, who gets what, reads over the
socket, garbage, and sockets that end with their token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.server.helpers import new_patient
from tests.signaling.conftest import expire_token, until
from tests.support.notify_client import NotifyClient
from yilian.server.core.settings import Settings

RECHECK = 0.5
UNAUTHORIZED_CODE = "unauthorized"

MakeNotify = Callable[..., Awaitable[NotifyClient]]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Re-check tokens twice a second."""
    return settings.with_overrides(rtc_recheck_seconds=RECHECK)


@pytest.fixture
async def make_notify(server: TestServer) -> AsyncIterator[MakeNotify]:
    """Connected ``NotifyClient``s; all closed at teardown."""
    clients: list[NotifyClient] = []

    async def make(user: Any, label: str | None = None) -> NotifyClient:
        client = NotifyClient(str(server.make_url("/")), user.token,
                              label or user.user["username"])
        clients.append(client)
        await client.connect()
        await client.wait_for("unread")  # sent once the socket is connected
        return client

    yield make
    await asyncio.gather(*(c.close() for c in clients))


async def _raw_connect(server: TestServer, auth: Any) -> str:
    """The server's answer to a /notify connect with this auth payload (raw frames)."""
    url = str(server.make_url("/socket.io/?EIO=4&transport=websocket")).replace("http", "ws", 1)
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        assert (await ws.receive_str()).startswith("0{")
        await ws.send_str("40/notify," + json.dumps(auth) if auth is not None else "40/notify,")
        while True:
            frame = await asyncio.wait_for(ws.receive_str(), 10)
            if frame.startswith("4"):
                return frame


async def request_consultation(village: Any, expert_id: int, urgency: str = "routine") -> dict:
    patient = await new_patient(village)
    code, body = await village.post("/api/consultations", {
        "patient_id": patient["id"], "kind": "imaging", "urgency": urgency,
        "question": "Old anterior infarct on this ECG?", "expert_id": expert_id})
    assert code == 201, body
    return body


async def test_no_bad_or_expired_token_is_refused(
    server: TestServer, settings: Settings, api: Any
) -> None:
    refused = '44/notify,{"message":"unauthorized"}'
    assert await _raw_connect(server, None) == refused
    assert await _raw_connect(server, {}) == refused
    assert await _raw_connect(server, {"token": 42}) == refused
    assert await _raw_connect(server, {"token": "not-a-token"}) == refused
    assert await _raw_connect(server, {"token": "x" * 5000}) == refused
    village = await api.login("village")
    assert (await _raw_connect(server, {"token": village.token})).startswith('40/notify,{"sid"')
    await expire_token(settings.resolved_database_url, village.token)
    assert await _raw_connect(server, {"token": village.token}) == refused


async def test_delivered_to_the_named_user_only_on_every_tab(
    api: Any, make_notify: MakeNotify
) -> None:
    village, expert, county = [await api.login(n) for n in ("village", "expert", "county")]
    tab1, tab2 = await make_notify(expert, "expert-1"), await make_notify(expert, "expert-2")
    others = [await make_notify(village), await make_notify(county)]
    before = tab1.got("unread")[0]["count"]
    assert tab2.got("unread") == [{"count": before}]

    c = await request_consultation(village, expert.user["id"])
    for tab in (tab1, tab2):
        [n] = await tab.wait_for("notification")
        assert n["kind"] == "consultation.requested"
        assert n["resource"] == {"type": "consultation", "id": c["id"]}
        assert n["urgent"] is False and n["read_at"] is None
        assert set(n) == {"id", "kind", "title", "body", "resource", "urgent", "created_at",
                          "read_at"}
        assert "Zhang San" not in n["title"] + n["body"]  # no patient in the text
    code, inbox = await expert.get("/api/notifications", params={"unread": "true"})
    assert code == 200 and inbox[0]["id"] == n["id"]
    await asyncio.sleep(0.3)
    assert [o.got("notification") for o in others] == [[], []]


async def test_reads_over_the_socket_reach_every_tab(
    api: Any, make_notify: MakeNotify
) -> None:
    village, expert = await api.login("village"), await api.login("expert")
    tab1, tab2 = await make_notify(expert, "expert-1"), await make_notify(expert, "expert-2")
    base = tab1.got("unread")[0]["count"]
    await request_consultation(village, expert.user["id"])
    await request_consultation(village, expert.user["id"], "emergency")
    first, second = await tab1.wait_for("notification", 2)
    assert (first["urgent"], second["urgent"]) == (False, True)
    assert await tab1.call("unread") == {"ok": True, "count": base + 2}

    assert await tab1.call("read", {"id": first["id"]}) == {
        "ok": True, "id": first["id"], "unread": base + 1}
    await tab2.wait_for("unread", 2)
    assert tab2.got("unread")[-1] == {"count": base + 1}
    # Reading again is harmless; another user's notification is not found.
    assert (await tab1.call("read", {"id": first["id"]}))["unread"] == base + 1
    vtab = await make_notify(village)
    refused = await vtab.call("read", {"id": second["id"]})
    assert refused["ok"] is False and refused["error"]["code"] == "not_found"

    ack = await tab2.call("read-all", {})
    assert ack == {"ok": True, "marked": base + 1, "unread": 0}
    await tab1.wait_for("unread", 3)
    assert tab1.got("unread")[-1] == {"count": 0}
    code, body = await expert.get("/api/notifications/unread-count")
    assert (code, body) == (200, {"count": 0})


@pytest.mark.parametrize(("event", "data", "code"), [
    ("read", None, "invalid_payload"),
    ("read", {"id": "7"}, "invalid_payload"),
    ("read", {"id": True}, "invalid_payload"),
    ("read", {"id": 1.0}, "invalid_payload"),
    ("read", {"id": 0}, "invalid_payload"),
    ("read", {"id": 2**31}, "invalid_payload"),
    ("read", {"id": 1, "also": 2}, "invalid_payload"),
    ("read", [1], "invalid_payload"),
    ("read-all", {"all": True}, "invalid_payload"),
    ("unread", "please", "invalid_payload"),
    ("connect", {}, "unknown_event"),
    ("disconnect", None, "unknown_event"),
    ("join", {"room": "consultation:1"}, "unknown_event"),
    ("notification", {"id": 1}, "unknown_event"),
])
async def test_garbage_events_get_an_error_ack(
    api: Any, make_notify: MakeNotify, event: str, data: Any, code: str
) -> None:
    client = await make_notify(await api.login("expert"))
    ack = await client.call(event, data)
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert (await client.call("unread"))["ok"] is True  # still connected and answering


async def test_garbage_frames_keep_the_connection(server: TestServer, api: Any) -> None:
    expert = await api.login("expert")
    url = str(server.make_url("/socket.io/?EIO=4&transport=websocket")).replace("http", "ws", 1)
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        assert (await ws.receive_str()).startswith("0{")
        await ws.send_str("40/notify," + json.dumps({"token": expert.token}))
        for frame in ("42/notify,{not json", "42/notify,5[", "42/notify,[]", "42/notify,[7]",
                      '42/notify,"read"', "42/notify,１[\"unread\"]", "\x00\xff"):
            await ws.send_str(frame)
        await ws.send_bytes(b"\x04garbage")
        await ws.send_str('42/notify,9["unread"]')
        async with asyncio.timeout(10):
            while True:
                frame = await ws.receive_str()
                if frame.startswith("43/notify,9"):
                    break
        assert json.loads(frame[len("43/notify,9"):])[0]["ok"] is True


async def test_logout_ends_the_socket_at_once(api: Any, make_notify: MakeNotify) -> None:
    expert = await api.login("expert")
    other = await make_notify(await api.login("expert"), "other tab, other login")
    client = await make_notify(expert)
    ended = asyncio.Event()
    client.sio.on("disconnect", ended.set, namespace="/notify")
    assert (await expert.post("/api/auth/logout"))[0] == 204
    await asyncio.wait_for(ended.wait(), 2)
    assert client.got("session-ended")[0]["error"]["code"] == UNAUTHORIZED_CODE
    assert (await other.call("unread"))["ok"] is True  # another token's socket lives on


async def test_expiry_ends_the_socket_at_the_recheck(
    api: Any, settings: Settings, make_notify: MakeNotify
) -> None:
    expert = await api.login("expert")
    client = await make_notify(expert)
    await expire_token(settings.resolved_database_url, expert.token)
    await until(lambda: bool(client.got("session-ended")), RECHECK * 8)
    await until(lambda: not client.sio.namespaces, 5)


async def test_a_user_connecting_later_finds_it_in_the_inbox(api: Any,
                                                             make_notify: MakeNotify) -> None:
    village, expert = await api.login("village"), await api.login("expert")
    c = await request_consultation(village, expert.user["id"])
    client = await make_notify(expert)
    assert client.got("unread")[0]["count"] >= 1
    code, items = await expert.get("/api/notifications", params={"unread": "true", "limit": "1"})
    assert code == 200 and items[0]["resource"] == {"type": "consultation", "id": c["id"]}
