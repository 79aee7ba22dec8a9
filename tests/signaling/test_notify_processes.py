"""Two real server processes on one database and one Redis: a notification committed through
one reaches a socket held by the other; a user connecting later finds it in the inbox; a
logout through one ends the socket on the other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.signaling.test_redis_processes import (  # noqa: F401
    ServerProcess,
    redis_channel,
    two_servers,
)
from tests.support.notify_client import NotifyClient
from yilian.server.core.settings import Settings

RECHECK = "0.5"


@pytest.fixture
async def two(
    settings: Settings, redis_channel: str, tmp_path: Path, server: Any  # noqa: F811
) -> AsyncIterator[list[ServerProcess]]:
    """Two ``yilian serve`` processes on the test database (the in-process server logs in)."""
    async with two_servers(settings, redis_channel, tmp_path,
                           {"YILIAN_RTC_RECHECK_SECONDS": RECHECK}) as procs:
        yield procs


async def _call(http: aiohttp.ClientSession, method: str, url: str, token: str,
                body: Any = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body,
                            headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, (await resp.json() if resp.content_type == "application/json"
                             else None)


async def test_a_request_on_one_process_reaches_a_socket_on_the_other(
    two: list[ServerProcess], api: Any
) -> None:
    one, other = two
    village, expert, township, radiology = [
        await api.login(n) for n in ("village", "expert", "township", "county_radiology")]
    live = NotifyClient(one.url, expert.token, "expert@1")
    late = NotifyClient(other.url, radiology.token, "radiology@2")
    async with aiohttp.ClientSession() as http:
        try:
            await live.connect()
            await live.wait_for("unread")
            code, patient = await _call(http, "POST", f"{other.url}/api/patients", village.token, {
                "name": "Chen Yi", "sex": "female", "birth_date": "1958-07-09"})
            assert code == 201, patient
            code, c = await _call(http, "POST", f"{other.url}/api/consultations", village.token, {
                "patient_id": patient["id"], "kind": "imaging", "urgency": "emergency",
                "question": "Wide-complex tachycardia?", "expert_id": expert.user["id"]})
            assert code == 201, c
            [n] = await live.wait_for("notification", seconds=5)
            assert n["kind"] == "consultation.requested" and n["urgent"] is True
            assert n["resource"] == {"type": "consultation", "id": c["id"]}

            # A queue request while its specialist is offline: kept, found on connecting.
            code, patient = await _call(http, "POST", f"{one.url}/api/patients", township.token,
                                        {"name": "Li Er", "sex": "male",
                                         "birth_date": "1970-01-02"})
            assert code == 201, patient
            code, q = await _call(http, "POST", f"{one.url}/api/consultations", township.token, {
                "patient_id": patient["id"], "kind": "imaging", "question": "Read this film",
                "target_institution_id": radiology.user["institution_id"],
                "specialty": "radiology"})
            assert code == 201, q
            await late.connect()
            [unread] = await late.wait_for("unread")
            assert unread["count"] >= 1
            code, items = await _call(http, "GET", f"{other.url}/api/notifications?unread=true",
                                      radiology.token)
            assert code == 200 and items[0]["resource"] == {"type": "consultation",
                                                            "id": q["id"]}
            assert late.got("notification") == []
            ack = await late.call("read", {"id": items[0]["id"]})
            assert ack["ok"] is True and ack["unread"] == unread["count"] - 1

            # A logout through process 2 ends the socket held by process 1 (its re-check).
            assert (await _call(http, "POST", f"{other.url}/api/auth/logout", expert.token))[0] \
                == 204
            async with asyncio.timeout(10):
                while live.sio.namespaces:  # noqa: ASYNC110 - the client keeps no event
                    await asyncio.sleep(0.05)
            assert live.got("session-ended")[0]["error"]["code"] == "unauthorized"
        finally:
            await asyncio.gather(live.close(), late.close())
