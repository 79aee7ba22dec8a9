"""Fixtures for the signalling tests: the real server, logged-in doctors, and aiortc peers."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import update

from tests.support.rtc_client import RtcClient
from yilian.server.core.db import Database, utcnow
from yilian.server.core.models import AuthToken
from yilian.server.core.settings import Settings

if TYPE_CHECKING:
    from tests.conftest import Api

GRACE_SECONDS = 2.0
# Modules whose tasks must all be gone once the clients and the server are closed.
OWNED_TASK_MODULES = ("signaling.", "aiortc.", "aioice.")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The core's test settings with a short resume grace period."""
    return settings.with_overrides(rtc_resume_grace_seconds=GRACE_SECONDS)


@pytest.fixture
async def doctors(api: Api) -> dict[str, Api]:
    """Logged-in demo users by username."""
    names = ("village", "township", "expert", "county", "guilin_doctor")
    logged = await asyncio.gather(*(api.login(n) for n in names))
    return dict(zip(names, logged, strict=True))


async def find_consultation(expert: Api, status: str, requester: Api) -> int:
    """The id of the demo consultation in ``status`` that ``requester`` asked the expert."""
    code, rows = await expert.get("/api/consultations", params={"status": status})
    assert code == 200, rows
    ids = [r["id"] for r in rows if r["requester_id"] == requester.user["id"]]
    assert ids, f"no {status} consultation from {requester.user['username']}"
    return ids[0]


@pytest.fixture
async def rooms(doctors: dict[str, Api]) -> dict[str, str]:
    """Room names of the demo consultations: village+expert, township+expert, and a closed one."""
    expert = doctors["expert"]
    village = await find_consultation(expert, "accepted", doctors["village"])
    township = await find_consultation(expert, "in_progress", doctors["township"])
    closed = await find_consultation(expert, "completed", doctors["village"])
    return {
        "village": f"consultation:{village}",
        "township": f"consultation:{township}",
        "closed": f"consultation:{closed}",
    }


def _owned(task: asyncio.Task[Any]) -> bool:
    if task.get_name() == "rtc-recheck":  # the server's periodic check lives as long as it
        return False
    coro = task.get_coro()
    module = getattr(getattr(coro, "cr_code", None), "co_filename", "")
    qualname = getattr(coro, "__qualname__", "")
    return any(m.rstrip(".") in module for m in OWNED_TASK_MODULES) or "PeerLink" in qualname


MakeClient = Callable[..., Awaitable[RtcClient]]


@pytest.fixture
async def make_client(server: TestServer) -> AsyncIterator[MakeClient]:
    """Connected ``RtcClient``s for logged-in users; all closed (and checked) at teardown."""
    clients: list[RtcClient] = []

    async def make(user: Api, label: str | None = None, **kwargs: Any) -> RtcClient:
        client = RtcClient(
            str(server.make_url("/")),
            user.token or "",
            label=label or user.user["username"],
            **kwargs,
        )
        clients.append(client)
        await client.connect()
        return client

    yield make
    await asyncio.gather(*(c.close() for c in clients))
    # aiortc finishes closing transports a few loop turns after close() returns.
    for _ in range(50):
        leftover = [t for t in asyncio.all_tasks() if not t.done() and _owned(t)]
        if not leftover:
            break
        await asyncio.sleep(0.05)
    assert not leftover, leftover


async def expire_token(database_url: str, token: str) -> None:
    """Make a live token look expired, as if its TTL had passed."""
    db = Database(database_url)
    try:
        async with db.write() as session:
            await session.execute(
                update(AuthToken)
                .where(AuthToken.token_hash == hashlib.sha256(token.encode()).hexdigest())
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
    finally:
        await db.close()


async def until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until ``predicate()`` holds; fail after ``seconds``."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - the state lives in objects without events
            await asyncio.sleep(0.02)


async def connected_pair(a: RtcClient, b: RtcClient, seconds: float = 15.0) -> None:
    """Wait until both sides have video frames and a data-channel message from each other."""
    await until(lambda: len(a.links) == 1 and len(b.links) == 1, seconds)
    la, lb = next(iter(a.links.values())), next(iter(b.links.values()))
    async with asyncio.timeout(seconds):
        await asyncio.gather(
            la.first_frame.wait(),
            lb.first_frame.wait(),
            la.message_received.wait(),
            lb.message_received.wait(),
        )


async def quiet_pair(
    make_client: MakeClient, doctors: dict[str, Any], room: str
) -> tuple[RtcClient, RtcClient, str]:
    """The expert, then the village doctor, in ``room`` without negotiating media.

    Returns both clients and the village doctor's peer id.
    """
    expert = await make_client(doctors["expert"], auto_negotiate=False)
    assert (await expert.join(room))["ok"]
    village = await make_client(doctors["village"], auto_negotiate=False)
    ack = await village.join(room)
    assert ack["ok"], ack
    return expert, village, ack["peer_id"]
