"""PostgreSQL drops the server's connections (a restart, a network cut): a request that was
using one answers 503 ``database_unavailable`` (nothing stored), and the next ones work on
fresh connections, without a ping before every transaction."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from yilian.server.core.settings import Settings


async def _drop_connections(url: str) -> int:
    u = make_url(url)
    conn = await asyncpg.connect(user=u.username or "postgres", host=u.host or "127.0.0.1",
                                 port=u.port or 5432, database=u.database, password=u.password)
    try:
        return int(await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await conn.close()


async def test_lost_connections_cost_one_503_then_recover(settings: Settings, api: Any) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has no connection to lose")
    village = await api.login("village")
    # A transaction's connection (SQLAlchemy's pool) and a lane's (core.lane: the expert
    # search), both open when the server drops them.
    for path in ("/api/patients", "/api/experts"):
        assert (await village.get(path))[0] == 200
    assert await _drop_connections(settings.database_url) >= 2
    for path in ("/api/patients", "/api/experts"):
        statuses = []
        for _ in range(4):
            status, body = await village.get(path)
            statuses.append(status)
            if status == 503:
                assert body["error"]["code"] == "database_unavailable", body
        assert statuses.count(503) <= 1 and statuses[-1] == 200, (path, statuses)
