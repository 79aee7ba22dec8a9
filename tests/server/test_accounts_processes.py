"""Deactivation across server processes: two ``yilian serve`` processes sharing Redis; the
account is deactivated through one, and its socket and token on the other end within a
second (the periodic re-check would take five)."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from tests.signaling.conftest import find_consultation, until
from tests.signaling.test_redis_processes import (  # noqa: F401 (fixtures)
    ServerProcess,
    redis_channel,
)
from tests.signaling.test_redis_processes import processes as processes  # noqa: F401
from tests.support.rtc_client import RtcClient


async def _call(http: aiohttp.ClientSession, method: str, url: str, token: str,
                body: Any = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body,
                            headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


async def test_deactivation_on_one_process_cuts_the_socket_and_token_on_the_other(
        processes: list[ServerProcess], api: Any) -> None:  # noqa: F811 (the fixture)
    one, two = processes
    admin, village, expert = [await api.login(n) for n in ("admin", "village", "expert")]
    room = f"consultation:{await find_consultation(expert, 'accepted', village)}"
    client = RtcClient(two.url, village.token, label="village@2", auto_negotiate=False)
    async with aiohttp.ClientSession() as http:
        try:
            await client.connect()
            assert (await client.join(room))["ok"]
            # Process 2 now holds the token in its cache.
            assert (await _call(http, "GET", f"{two.url}/api/me", village.token))[0] == 200
            started = time.monotonic()
            status, body = await _call(http, "PATCH", f"{one.url}/api/users/{village.user['id']}",
                                       admin.token, {"active": False})
            assert status == 200 and body["active"] is False, body
            await until(lambda: not client.sio.connected, 1.0)
            status, err = await _call(http, "GET", f"{two.url}/api/me", village.token)
            assert status == 401 and err["error"]["code"] == "invalid_token"
            assert time.monotonic() - started < 1.0
        finally:
            await client.close()
