"""Shared fixtures: a real database (SQLite, or PostgreSQL when asked), the real app on a
loopback port, and logged-in demo users.

Set ``YILIAN_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test`` to run the
suite on PostgreSQL: each run gets its own template database and each test a fresh copy.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession
from aiohttp.test_utils import TestServer
from sqlalchemy.engine import make_url

from yilian.server.app import create_app
from yilian.server.core import keys
from yilian.server.core.db import Database
from yilian.server.core.settings import Settings
from yilian.server.demo import DEMO_PASSWORD, load_demo
from yilian.server.schema import migrate

TEST_SECRET = "test-secret-key-not-for-production"
PG_URL = os.environ.get("YILIAN_TEST_DATABASE_URL", "")


def base_settings(data_dir: Path, database_url: str = "") -> Settings:
    """Settings for a test server: loopback, no DICOM port unless a test asks for one."""
    return Settings.defaults().with_overrides(
        host="127.0.0.1", port=0, data_dir=data_dir, database_url=database_url,
        secret_key=TEST_SECRET, dicom_port="off", expiry_sweep_seconds=3600)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    url = make_url(PG_URL)
    conn = await asyncpg.connect(user=url.username or "postgres", host=url.host or "127.0.0.1",
                                 port=url.port or 5432, database=url.database or "test",
                                 password=url.password)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_READS_DATABASE_URL: dict[str, bool] = {}


def _reads_database_url(path: Path) -> bool:
    """Whether a test module makes a database of its own from the URL (not via ``template``)."""
    key = str(path)
    if key not in _READS_DATABASE_URL:
        text = path.read_text(errors="replace")
        _READS_DATABASE_URL[key] = any(word in text for word in (
            "PG_URL", "DATABASE_URL", "database_url"))
    return _READS_DATABASE_URL[key]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``dbless`` the tests that touch no test database: every database fixture
    (``settings``, ``server``, ``api``, ...) goes through ``template``, so a test without it,
    in a module that does not read the database URL itself, does the same on every
    database. CI runs them once, on SQLite (``-m "not dbless"`` on PostgreSQL)."""
    for item in items:
        if "template" in getattr(item, "fixturenames", ()):
            continue
        if _reads_database_url(Path(str(item.fspath))):
            continue
        item.add_marker(pytest.mark.dbless)


def _pg_url(database: str) -> str:
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A data directory and database, migrated and loaded with the demo alliance once."""
    data_dir = tmp_path_factory.mktemp("template")
    name = f"yilian_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = _pg_url(name) if PG_URL else ""

    async def build() -> None:
        if PG_URL:
            await _pg_admin(f'CREATE DATABASE "{name}"')
        settings = base_settings(data_dir, url)
        db = Database(settings.resolved_database_url)
        await migrate(db)
        await load_demo(db, settings)
        await db.close()

    asyncio.run(build())
    yield data_dir, name
    if PG_URL:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(template: tuple[Path, str], tmp_path: Path) -> Iterator[Settings]:
    """Settings pointing at a fresh copy of the template (files and database)."""
    tpl_dir, tpl_name = template
    data_dir = tmp_path / "data"
    shutil.copytree(tpl_dir, data_dir)
    with database_copy(tpl_name) as url:
        yield base_settings(data_dir, url)


@contextmanager
def database_copy(template_name: str) -> Iterator[str]:
    """A fresh copy of the template database for the length of the block: its URL on
    PostgreSQL, ``""`` on SQLite (where the database is a file of the copied data directory)."""
    if not PG_URL:
        yield ""
        return
    name = f"yilian_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[TestServer]:
    """The real application, listening on a loopback port."""
    threads_before = {t.ident for t in threading.enumerate()}
    srv = TestServer(create_app(settings), host="127.0.0.1", port=0)
    await srv.start_server()
    yield srv
    await srv.close()
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not [t for t in leftover if "yilian" in repr(t.get_coro())], leftover
    del threads_before


class Api:
    """A thin HTTP client bound to the test server, optionally logged in."""

    def __init__(self, server: TestServer, http: ClientSession, token: str | None = None,
                 user: dict[str, Any] | None = None) -> None:
        self.server, self.http, self.token, self.user = server, http, token, user

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return h | (extra or {})

    async def request(self, method: str, path: str, json: Any = None, *,
                      data: Any = None, headers: dict[str, str] | None = None,
                      params: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.http.request(method, self.url(path), json=json, data=data,
                                     params=params, headers=self.headers(headers)) as resp:
            return resp.status, await _body(resp)

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.request("POST", path, json, **kw)

    async def put(self, path: str, json: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.request("PUT", path, json, **kw)

    async def flush_audit(self) -> None:
        """Write the audit entries journaled so far to the table (the log does it on its own
        within a moment)."""
        await self.server.app[keys.AUDIT].flush()

    async def login(self, username: str, password: str = DEMO_PASSWORD) -> Api:
        """A new client logged in as ``username``."""
        status, body = await self.post("/api/auth/login",
                                       {"username": username, "password": password})
        assert status == 200, body
        return Api(self.server, self.http, body["token"], body["user"])


async def _body(resp: ClientResponse) -> Any:
    if resp.content_type == "application/json":
        return await resp.json()
    return await resp.read()


@pytest.fixture
async def api(server: TestServer) -> AsyncIterator[Api]:
    """An anonymous client; ``await api.login('village')`` gives a logged-in one."""
    async with ClientSession() as http:
        yield Api(server, http)


def with_settings(settings: Settings, **changes: Any) -> Settings:
    """A copy of the test settings with some fields changed."""
    return settings.with_overrides(**changes)
